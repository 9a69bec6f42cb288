/**
 * BullMQ recovery worker and the `tcc` command line (DESIGN.md §7).
 *
 * Not implemented yet: this package only reserves its name and place in the build.
 */
export {};
