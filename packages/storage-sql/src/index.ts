/**
 * PostgreSQL and PGlite storage for @tcc/core (DESIGN.md §6), with the SQL barrier.
 *
 * Not implemented yet: this package only reserves its name and place in the build.
 */
export {};
