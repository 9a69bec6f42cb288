/**
 * Redis storage for @tcc/core (DESIGN.md §6): standalone, Sentinel, Cluster and client-side shards.
 *
 * Not implemented yet: this package only reserves its name and place in the build.
 */
export {};
