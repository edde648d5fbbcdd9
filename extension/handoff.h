/*-------------------------------------------------------------------------
 *
 * handoff.h
 *	  The slots of the in-memory hand-off, shared by handoff.c (the slots,
 *	  their states and transitions, the caller's side) and handoff_worker.c
 *	  (claims and answers).  The states are described at the top of
 *	  handoff.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SYRPC_HANDOFF_H
#define SYRPC_HANDOFF_H

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/proc.h"

#include "syrpc_internal.h"

typedef enum SlotState
{
	HO_FREE,
	HO_QUEUED,
	HO_LEASED,
	HO_ANSWERING,
	HO_ANSWERED,
	HO_SPILLING,
	HO_SPILLED,
	HO_WITHDRAWN,
	HO_FAILED
} SlotState;

#define NOBODY		(-1)

typedef struct Slot
{
	SlotState	state;
	Oid			dbid;
	pg_uuid_t	id;				/* the call's result_id */
	uint64		seq;			/* order of puts: the oldest is claimed first */
	int			holder;			/* pgprocno of the worker whose lease runs */
	int			answerer;		/* pgprocno of the worker whose answer is open */
	int32		attempts;
	int32		max_attempts;
	TimestampTz created_at;
	TimestampTz expires_at;		/* created_at + request_ttl */
	int64		lease_us;		/* the app's lease_time when it was put */
	TimestampTz lease_end;		/* LEASED: when the lease runs out */
	TimestampTz claimed_at;		/* of the last claim */
	bool		failed;			/* ANSWERED: data is the reason it failed */
	bool		in_table;		/* ANSWERED: the result is a row of syrpc.result */
	int			qnext;			/* QUEUED: the queue of all slots, by seq */
	int			qprev;
	ConditionVariable cv;		/* answerers wait here for a state change */
	char		app[NAMEDATALEN];
	char		type[NAMEDATALEN];
	Size		len;			/* bytes of its data: the request, then the answer */
} Slot;

/*
 * The slots, then their data (payload_max bytes each) in an array of its
 * own, so that walking the slots touches only their headers.
 */
typedef struct Handoff
{
	int			nslots;
	uint64		next_seq;
	int			qhead;			/* the QUEUED slots, oldest seq first */
	int			qtail;
	pg_atomic_uint32 queued;	/* how many: 0 lets workers skip the lock */
	Slot		slots[FLEXIBLE_ARRAY_MEMBER];
} Handoff;

/* A claim or answer of the running transaction. */
typedef struct Op
{
	bool		answer;			/* else a claim */
	int			slot;
	pg_uuid_t	id;
	SubTransactionId subid;
	struct varlena *data;		/* the answer, in TopTransactionContext */
	bool		failed;
	bool		in_table;
} Op;

extern Handoff *handoff;
extern LWLock *handoff_lock;
extern Size payload_max;

static inline Slot *
slot_at(int i)
{
	return &handoff->slots[i];
}

/* This backend: its slot, and its name as holder or answerer. */
static inline int
me(void)
{
	return MyProc->pgprocno;
}

extern char *slot_data(Slot *s);
extern void set_state(Slot *s, SlotState to);
extern void wake_caller(int slot);
extern void requeue(Slot *s);
extern bool op_pending(int slot);
extern void hook_exit(void);
extern void remember_op(bool answer, int slot, const pg_uuid_t *id,
						struct varlena *data, bool failed, bool in_table);

#endif							/* SYRPC_HANDOFF_H */
