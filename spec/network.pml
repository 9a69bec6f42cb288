/*
 * The messages between services, as a pool: a request in flight is a bit that any moment may
 * deliver (reordering, delay), that delivery may leave set (a duplicate), and that a fault
 * may clear (a loss). Replies are slots the sender reads; a reply that never comes is a
 * timeout. Losses, early timeouts and duplicates each have a budget: past it, the network is
 * reliable, which is the "once messages stop being lost" of the liveness property.
 */
#define R_OK   1
#define R_BUSY 2   /* 409 TCC_BUSY */
#define R_ERR  3   /* any other failure: refused try, state error, branch failed */

bit  tryq[2];      /* the try request (HTTP call with tcc-context) to branch i */
byte tryrep[2];    /* its answer to the root */
byte cmdq[2];      /* .tcc commands to branch i: bit (sender*2 + action), sender 0 root, 1 its recovery */
byte crep[4];      /* answer slot of sender s about branch i: [s*2 + i] */
byte serving[2];   /* sender (+1) whose command branch i's handler is running; 0 none */
byte losses, dups, crashes;

/* A delivery of the command bit `b` to branch i: taken, or (a duplicate) left for later. */
inline take(q, b) {
  if
  :: q = q & ~(b)
  :: dups < DUP_MAX -> dups++
  fi
}

/* Any step of a process may be its last: its claims stay in the store until they lapse. */
#define CRASH(label) if :: crashes < CRASH_MAX -> crashes++; goto label :: true -> skip fi
/* (the label's first step ends what the process was running, atomically: see `restart:`) */
