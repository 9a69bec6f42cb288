/*
 * What the properties observe. Business effects are ghosts: the application's try, confirm and
 * cancel of branch i's participant (one per branch; the root's own local participants add
 * nothing a remote one does not).
 */
bit  btry[2];    /* the business try ran (started) */
bit  bconf[2];   /* a business confirm ran */
bit  bcanc[2];   /* a business cancel ran */
bit  bcx[2];     /* the branch's cancel was written: a tombstone or CANCELLING */
byte inbiz[2];   /* drivers inside the business confirm/cancel of branch i right now */

/*
 * P1 a branch is never both confirmed and cancelled; P2 never two drivers at once;
 * P4 a durable commit point is never contradicted (no cancel after CONFIRMING, no confirm after
 * CANCELLING), and all branches end the same way.
 */
inline business(i, ph) {
  atomic {
    assert(inbiz[i] == 0);                                   /* P2 */
    inbiz[i] = 1;
    if
    :: ph == CONFIRM -> bconf[i] = 1; assert(!cx_acked)      /* P4 */
    :: else -> bcanc[i] = 1; assert(!cp_acked)               /* P4 */
    fi;
    assert(!(bconf[i] && bcanc[i]));                         /* P1 */
    assert(!((bconf[0] || bconf[1]) && (bcanc[0] || bcanc[1])))  /* P4: all or nothing */
  }
}

/*
 * Liveness (P6): every record ends CONFIRMED or CANCELLED (a branch never created is fine).
 * A record that reached VMAX writes is out of the model's bound (its retries have no backoff
 * here, so a busy loop can use writes up): such runs are not judged (`capped`).
 */
#define capped (rs[0].ver >= VMAX || bs[0].ver >= VMAX || bs[1].ver >= VMAX)
#define settled (TERMINAL(rs[0].st) && (bs[0].st == NONE || TERMINAL(bs[0].st)) && (bs[1].st == NONE || TERMINAL(bs[1].st)))
