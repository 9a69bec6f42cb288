/*
 * The TCC protocol of @tcc/core: one root enlisting two remote branches over a lossy network,
 * with recovery drivers, claims on a coarse clock, a replicated root store and crashes.
 * `npm run verify` (scripts/verify.mjs) checks it; docs/protocol.md explains what it shows.
 * Fault budgets (override with -D): losses/timeouts, duplicates, crashes, failovers, unacked writes.
 */
#ifndef LOSS_MAX
#define LOSS_MAX 1
#endif
#ifndef DUP_MAX
#define DUP_MAX 1
#endif
#ifndef CRASH_MAX
#define CRASH_MAX 1
#endif
#ifndef FAILOVER_MAX
#define FAILOVER_MAX 1
#endif
#ifndef ACKFAIL_MAX
#define ACKFAIL_MAX 1
#endif

#include "store.pml"
#include "network.pml"
#include "clock.pml"
#include "props.pml"
#include "branch.pml"
#include "root.pml"

init {
  atomic {
    run Clock();
#if FAILOVER_MAX > 0
    run Replica();
#endif
    run TryHandler(0); run TryHandler(1);
    run CmdHandler(0); run CmdHandler(1);
    run BranchRecovery(0); run BranchRecovery(1);
    run RootRecovery();
#ifndef NO_OPERATOR
    run Operator();
#endif
    run Root()
  }
}

#ifdef LIVENESS
ltl terminates { <>[] (settled || capped) }
#endif
