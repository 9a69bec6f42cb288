/*
 * The log: one record per service. The root's store has a primary and a replica that may lag;
 * a failover makes the replica primary and loses what it had not acknowledged. Branch stores
 * are single copies (their replicas would add states, not new orders of writes: every
 * branch write that matters is a claim write, checked by compare-and-set like the root's).
 */
#define NONE        0
#define TRYING      1
#define TRIED       2
#define TRY_FAILED  3
#define CONFIRMING  4
#define CANCELLING  5
#define CONFIRMED   6
#define CANCELLED   7
#define TERMINAL(s) ((s) == CONFIRMED || (s) == CANCELLED)

#define CONFIRM 0
#define CANCEL  1

/* storage/record.ts TransactionRecord: only the fields the protocol reads */
typedef Rec {
  byte st;      /* status */
  byte ver;     /* version: every write is a compare-and-set on it */
  byte cown;    /* claim.owner (0: no claim) */
  bit  clive;   /* claim.until not yet passed */
  byte done;    /* participants finished in the current phase (bit per participant) */
  byte tried;   /* root: remote participants whose try answered (kept in the log by later writes) */
  byte enl;     /* root: remote participants enlisted */
}

Rec rs[2];      /* root store: [0] primary, [1] replica */
Rec bs[2];      /* branch stores, one per branch service */

/* Drivers, by claim owner. working[o]: o is alive and renews its claim on a timer. */
#define O_ROOT   1
#define O_RREC   2
#define O_OPER   3
#define O_BCMD(i) (4 + (i))
#define O_BREC(i) (6 + (i))
#define O_BTRY(i) (8 + (i))
bit working[10];

byte failovers, ackfails;

/* A process forgets its working copy between attempts (as the code does): fewer states. */
inline forget(w) {
  w.st = 0; w.ver = 0; w.cown = 0; w.clive = 0; w.done = 0; w.tried = 0; w.enl = 0
}

inline copyrec(d, s) {
  d.st = s.st; d.ver = s.ver; d.cown = s.cown; d.clive = s.clive;
  d.done = s.done; d.tried = s.tried; d.enl = s.enl
}

/*
 * The replica catches up with the primary. A CONFIRMING (CANCELLING) it holds survives any
 * failover: that is the commit point "written" of the properties (ghosts cp_acked, cx_acked).
 */
bit cp_acked, cx_acked;
inline replicate() {
  copyrec(rs[1], rs[0]);
  if
  :: rs[1].st == CONFIRMING -> cp_acked = 1
  :: rs[1].st == CANCELLING -> cx_acked = 1
  :: else -> skip
  fi
}

/*
 * storage.update(record, expectedVersion): a compare-and-set, applied on the primary. Past
 * VMAX writes a record no more (as if parked after maxRetries), which keeps the state space
 * finite: every retry loop of the protocol writes.
 */
#ifndef VMAX
#define VMAX 10
#endif
inline cas(dst, w, ok) {
  atomic {
    if
    :: dst.ver == w.ver && w.ver < VMAX -> w.ver++; copyrec(dst, w); ok = 1;
       /* a write carrying the claim starts its renewal (Claim.written) */
       if :: w.clive -> working[w.cown] = 1 :: else -> skip fi
    :: else -> ok = 0
    fi
  }
}

/*
 * RecordLog.save with `replicas` (Redis WAIT): after the primary took the write, either a
 * replica acknowledges it, or RecordLog.#unacknowledged writes it again (its version + 1)
 * until one is; that rewrite loses its compare-and-set if a failover took the write away
 * (ACK_LOST); or no acknowledgement comes and ReplicationTimeoutError reaches the caller
 * (ACK_TIMEOUT), which must not act on the write.
 */
#define ACK_OK      1
#define ACK_LOST    2
#define ACK_TIMEOUT 3
inline rsave(w, ack) {
  cas(rs[0], w, ack);
  if
  :: ack == 0 -> skip            /* lost the compare-and-set: TCC_OPTIMISTIC_LOCK */
  :: else ->
    if
    :: atomic { replicate(); ack = ACK_OK }
    :: ackfails < ACKFAIL_MAX ->
       ackfails++;
       if
       :: atomic { rs[0].ver == w.ver -> w.ver++; copyrec(rs[0], w); replicate(); ack = ACK_OK }
       :: atomic { rs[0].ver != w.ver -> ack = ACK_LOST }
       :: ack = ACK_TIMEOUT
       fi
    fi
  fi
}

/* Replication lag and one failover (Sentinel promotes the replica). */
proctype Replica() {
end_r:
  do
  :: failovers < FAILOVER_MAX -> atomic { failovers++; copyrec(rs[0], rs[1]) }
  :: atomic { rs[1].ver != rs[0].ver -> replicate() }
  od
}
