// llmspy-tui: OpenSSL plaintext capture.
//
// Loaded by llmspy_tui/capture/loader.py through bcc, which defines at compile time:
//   CHUNK_SIZE   payload bytes per ring-buffer record (power of two)
//   MAX_CAPTURE  bytes captured per SSL call at most (--max-capture)
//   MAX_CHUNKS   records emitted per SSL call at most (MAX_CAPTURE / CHUNK_SIZE, rounded up)
//   CHUNKS_PER_PROG  chunks one program emits before it tail-calls the next
//   RING_PAGES   ring buffer size in pages (power of two)
//   NR_CPUS      number of possible CPUs
//
// Only pt_regs, tracepoint arguments and user memory are read: kernel headers on the
// host may not match the running kernel, so no kernel struct offset is trusted.
// Lengths are clamped with masks and plain comparisons, never with min()/max() macros.

#include <uapi/linux/ptrace.h>

#define KIND_DATA 0        // payload bytes of one SSL call
#define KIND_TRUNCATED 1   // the call returned more than max-capture; total_len is true
#define KIND_LOST 2        // bytes of a call that could not be read or queued
#define KIND_SSL_FREE 3    // connection ended (SSL_free)
#define KIND_EXEC 4        // a process exec'd; payload = filename
#define KIND_EXIT 5        // a process (thread-group leader) exited

#define DIR_SEND 0
#define DIR_RECV 1

// counters (per-CPU array indexes); mirrored in capture/records.py
#define CNT_RB_FAIL 0          // ring buffer output failed (records lost)
#define CNT_RB_FAIL_BYTES 1    // payload bytes in those records
#define CNT_READ_FAIL 2        // bpf_probe_read_user failed
#define CNT_READ_FAIL_BYTES 3
#define CNT_TRUNC_CALLS 4      // calls longer than max-capture
#define CNT_TRUNC_BYTES 5      // bytes beyond max-capture (not captured, by request)
#define CNT_CALLS 6            // successful SSL calls seen
#define CNT_BYTES 7            // payload bytes emitted
#define CNT_NESTED 8           // nested SSL_* calls ignored (one library variant calling another)
#define CNT_STASH_FAIL 9       // entry arguments could not be stashed (map full)
#define CNT_SKIPPED 10         // calls on connections marked not interesting (not copied)
#define RETRY_FAST_NS 1000000  // a failed reservation that took less than this is retried
#define CNT_RB_RETRIED 11      // ring buffer outputs that failed, then succeeded on a retry
#define CNT_RB_FAIL_NS 12      // time spent in ring buffer outputs that failed for good
#define CNT_MAX 13

struct rec_hdr {
    u64 ts;          // bpf_ktime_get_ns at the call's return
    u64 pid_tgid;
    u64 conn;        // SSL* (with tgid, the connection key)
    u64 offset;      // stream offset of this record's first byte (per conn and dir)
    u64 total_len;   // bytes the call transferred
    u32 seq;         // call number on this conn and dir
    u32 len;         // payload bytes following this header
    u8 kind;
    u8 dir;
    u16 chunk;       // index of this chunk within the call
    u32 lost;        // KIND_LOST: bytes that could not be read; KIND_TRUNCATED: bytes past the cap
    char comm[16];   // thread comm (fallback only: /proc gives the process's)
};

struct rec_t {
    struct rec_hdr h;
    char data[2 * CHUNK_SIZE];   // masked length needs room for 2*CHUNK_SIZE-1
    // The call being emitted, kept here so that a tail-called program can go on with it.
    u64 job_buf;
    u64 job_base;
    u64 job_want;
    u32 job_next;   // index of the next chunk to emit
    u32 job_pad;
};

struct stash_t {
    u64 ssl;
    u64 buf;
    u64 num;
    u64 out_len_ptr;   // size_t * for the _ex variants and the internal functions, 0 otherwise
    u32 depth;         // nesting depth: only the outermost call is reported
    u32 internal;      // hooked at ssl_{read,write}_internal: success is any return > 0
};

struct conn_key_t {
    u64 ssl;
    u32 tgid;
    u32 dir;
};

struct skip_key_t {
    u64 ssl;
    u32 tgid;
    u32 pad;
};

struct conn_state_t {
    u64 offset;
    u32 seq;
    u32 pad;
};

BPF_RINGBUF_OUTPUT(events, RING_PAGES);
// One scratch record per CPU. Not a per-CPU map: those cap values at 32 KiB. Uprobe and
// tracepoint programs run with migration disabled, so the CPU's slot is ours until we return.
BPF_ARRAY(scratch, struct rec_t, NR_CPUS);
BPF_PERCPU_ARRAY(counters, u64, CNT_MAX);
// emit_more, the continuation of a call longer than CHUNKS_PER_PROG chunks (set by the loader).
BPF_PROG_ARRAY(chunk_progs, 1);
// Keyed by pid_tgid (the thread); cleared when the thread exits.
BPF_TABLE("lru_hash", u64, struct stash_t, stash_write, 16384);
BPF_TABLE("lru_hash", u64, struct stash_t, stash_read, 16384);
BPF_TABLE("lru_hash", struct conn_key_t, struct conn_state_t, conn_state, 65536);
// config[0] = 1 when only tgids present in allow_tgid are traced.
BPF_ARRAY(config, u32, 4);
// value 1: traced; value 2: traced, and forked children inherit it.
BPF_TABLE("lru_hash", u32, u32, allow_tgid, 65536);
// Connections whose bytes are not copied: inbound (this process is the TLS server) unless
// config[1] is set, and connections user space judged not interesting (not HTTP, say).
BPF_TABLE("lru_hash", struct skip_key_t, u8, skip_conn, 65536);

static __always_inline void count(u32 idx, u64 n) {
    u64 *c = counters.lookup(&idx);
    if (c)
        *c += n;
}

static __always_inline int traced(u32 tgid) {
    u32 zero = 0;
    u32 *on = config.lookup(&zero);
    if (!on || *on == 0)
        return 1;
    return allow_tgid.lookup(&tgid) != 0;
}

// bcc rewrites map method calls by name, so maps cannot be passed as arguments: pick by flag.
static __always_inline struct stash_t *stash_lookup(int is_read, u64 *id) {
    return is_read ? stash_read.lookup(id) : stash_write.lookup(id);
}

static __always_inline int skipped(u64 ssl, u32 tgid) {
    struct skip_key_t k = {};
    k.ssl = ssl;
    k.tgid = tgid;
    return skip_conn.lookup(&k) != 0;
}

// Records never wake the consumer: it drains on a short timer, so the traced program does not
// pay for waking it on every SSL call. (A timer, not a wakeup, also gives it bigger batches.)
#define RB_FLAGS BPF_RB_NO_WAKEUP

// ex: 0 = SSL_read/SSL_write (count in the return value), 1 = the _ex variants (count in *arg4),
// 2 = ssl_{read,write}_internal (count in *arg4, success is any return > 0).
static __always_inline int stash_enter(int is_read, struct pt_regs *ctx, int ex) {
    u64 id = bpf_get_current_pid_tgid();
    if (!traced(id >> 32))
        return 0;
    if (skipped(PT_REGS_PARM1(ctx), id >> 32)) {
        count(CNT_SKIPPED, 1);
        return 0;
    }
    struct stash_t *prev = stash_lookup(is_read, &id);
    // Same thread, same SSL*, call still open: one variant implemented via another.
    if (prev && prev->ssl == PT_REGS_PARM1(ctx)) {
        prev->depth += 1;
        count(CNT_NESTED, 1);
        return 0;
    }
    struct stash_t s = {};
    s.ssl = PT_REGS_PARM1(ctx);
    s.buf = PT_REGS_PARM2(ctx);
    s.num = PT_REGS_PARM3(ctx);
    s.out_len_ptr = ex ? PT_REGS_PARM4(ctx) : 0;
    s.internal = ex == 2;
    int err = is_read ? stash_read.update(&id, &s) : stash_write.update(&id, &s);
    if (err != 0)
        count(CNT_STASH_FAIL, 1);
    return 0;
}

// Emit the chunks of the call described in r->job_*, at most CHUNKS_PER_PROG of them, then
// either continue in a fresh program (a tail call: each program is verified once, with a short
// loop, whatever the cap) or finish with the truncation marker.
static __always_inline void emit_chunks(struct rec_t *r) {
    u64 buf = r->job_buf, base = r->job_base, want = r->job_want;
    u32 first = r->job_next;
    u64 rb_fail = 0, rb_fail_bytes = 0, rd_fail = 0, rd_fail_bytes = 0, sent = 0, retried = 0, fail_ns = 0;

#pragma clang loop unroll(disable)
    for (u32 k = 0; k < CHUNKS_PER_PROG; k++) {
        u32 i = first + k;
        u64 off = (u64)i * CHUNK_SIZE;
        if (off >= want)
            break;
        u64 rem = want - off;
        u32 len = rem > CHUNK_SIZE ? CHUNK_SIZE : (u32)rem;
        len &= (2 * CHUNK_SIZE - 1);
        r->h.offset = base + off;
        r->h.chunk = i;
        r->h.kind = KIND_DATA;
        r->h.len = len;
        r->h.lost = 0;
        u32 sz = sizeof(struct rec_hdr) + len;
        if (bpf_probe_read_user(r->data, len, (void *)(buf + off)) != 0) {
            // the header still goes out, as KIND_LOST with the byte count: never silent
            rd_fail += 1;
            rd_fail_bytes += len;
            r->h.kind = KIND_LOST;
            r->h.len = 0;
            r->h.lost = len;
            sz = sizeof(struct rec_hdr);
        }
        // Retries: since 6.15 the reservation takes a "resilient" spin lock that can give up
        // without the ring being full (seen here: a few records an hour at 2 MB/s). A failure
        // that came back fast is retried, up to three times; a full ring fails every time.
        u32 osz = sz & (4 * CHUNK_SIZE - 1);
        long rc = events.ringbuf_output(r, osz, RB_FLAGS);
        if (rc != 0) {
            u64 t0 = bpf_ktime_get_ns();
            if (rc != 0 && bpf_ktime_get_ns() - t0 < RETRY_FAST_NS)
                rc = events.ringbuf_output(r, osz, RB_FLAGS);
            if (rc != 0 && bpf_ktime_get_ns() - t0 < RETRY_FAST_NS)
                rc = events.ringbuf_output(r, osz, RB_FLAGS);
            if (rc != 0 && bpf_ktime_get_ns() - t0 < RETRY_FAST_NS)
                rc = events.ringbuf_output(r, osz, RB_FLAGS);
            if (rc == 0)
                retried += 1;
            else
                fail_ns += bpf_ktime_get_ns() - t0;
        }
        if (rc != 0) {
            rb_fail += 1;
            rb_fail_bytes += r->h.len;
        } else {
            sent += r->h.len;
        }
    }
    r->h.lost = 0;
    r->job_next = first + CHUNKS_PER_PROG;
    count(CNT_RB_FAIL, rb_fail);
    count(CNT_RB_FAIL_BYTES, rb_fail_bytes);
    count(CNT_RB_RETRIED, retried);
    count(CNT_RB_FAIL_NS, fail_ns);
    count(CNT_READ_FAIL, rd_fail);
    count(CNT_READ_FAIL_BYTES, rd_fail_bytes);
    count(CNT_BYTES, sent);
}

// After the last chunk: the truncation marker, if the call was longer than the cap.
static __always_inline void finish_call(struct rec_t *r) {
    u64 total = r->h.total_len, cap = MAX_CAPTURE;
    if (total <= cap)
        return;
    count(CNT_TRUNC_CALLS, 1);
    count(CNT_TRUNC_BYTES, total - cap);
    r->h.kind = KIND_TRUNCATED;
    r->h.offset = r->job_base + cap;
    r->h.len = 0;
    r->h.lost = (u32)(total - cap);   // SSL calls take an int length: fits
    r->h.chunk = (u16)MAX_CHUNKS;
    if (events.ringbuf_output(&r->h, sizeof(r->h), RB_FLAGS) != 0)
        count(CNT_RB_FAIL, 1);
}

static __always_inline void run_call(struct pt_regs *ctx, struct rec_t *r) {
    emit_chunks(r);
    if ((u64)r->job_next * CHUNK_SIZE < r->job_want) {
        chunk_progs.call(ctx, 0);
        // Only reached when the tail call failed (the kernel allows 33 in a row): the rest of
        // the call is reported as lost, with its length.
        u64 done = (u64)r->job_next * CHUNK_SIZE;
        u64 rest = r->job_want - done;
        count(CNT_RB_FAIL, 1);
        count(CNT_RB_FAIL_BYTES, rest);
        r->h.kind = KIND_LOST;
        r->h.offset = r->job_base + done;
        r->h.len = 0;
        r->h.lost = (u32)rest;
        events.ringbuf_output(&r->h, sizeof(r->h), RB_FLAGS);
        r->h.lost = 0;
    }
    finish_call(r);
}

// The continuation of a long call, entered by tail call from run_call (itself included).
int emit_more(struct pt_regs *ctx) {
    u32 cpu = bpf_get_smp_processor_id();
    struct rec_t *r = scratch.lookup(&cpu);
    if (r)
        run_call(ctx, r);
    return 0;
}

// Emit one SSL call's bytes as up to MAX_CHUNKS records, then a truncation marker
// if the call was longer than the cap.
static __always_inline void emit_call(struct pt_regs *ctx, struct stash_t *s, u64 id, u64 total, u8 dir) {
    u32 cpu = bpf_get_smp_processor_id();
    struct rec_t *r = scratch.lookup(&cpu);
    if (!r)
        return;

    struct conn_key_t ck = {};
    ck.ssl = s->ssl;
    ck.tgid = id >> 32;
    ck.dir = dir;
    struct conn_state_t *st = conn_state.lookup(&ck);
    struct conn_state_t fresh = {};
    if (!st) {
        conn_state.update(&ck, &fresh);
        st = conn_state.lookup(&ck);
        if (!st)
            return;
    }
    u64 base = st->offset;
    u32 seq = st->seq;
    st->offset = base + total;
    st->seq = seq + 1;

    r->h.ts = bpf_ktime_get_ns();
    r->h.pid_tgid = id;
    r->h.conn = s->ssl;
    r->h.total_len = total;
    r->h.seq = seq;
    r->h.dir = dir;
    r->h.lost = 0;
    bpf_get_current_comm(&r->h.comm, sizeof(r->h.comm));
    count(CNT_CALLS, 1);

    u64 cap = MAX_CAPTURE;
    r->job_buf = s->buf;
    r->job_base = base;
    r->job_want = total > cap ? cap : total;
    r->job_next = 0;
    run_call(ctx, r);
}

static __always_inline int stash_return(int is_read, struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    struct stash_t *s = stash_lookup(is_read, &id);
    if (!s)
        return 0;
    if (s->depth > 0) {
        s->depth -= 1;
        return 0;
    }
    struct stash_t copy = *s;
    if (is_read)
        stash_read.delete(&id);
    else
        stash_write.delete(&id);

    // SSL_* return int: the upper half of rax is not defined, so never read it.
    int ret = (int)PT_REGS_RC(ctx);
    u64 total = 0;
    if (copy.out_len_ptr) {
        // SSL_read_ex / SSL_write_ex: 1 on success, byte count in *arg4; the internal
        // functions they (and SSL_read/SSL_write) call: > 0 on success
        if (copy.internal ? ret <= 0 : ret != 1)
            return 0;
        if (bpf_probe_read_user(&total, sizeof(total), (void *)copy.out_len_ptr) != 0) {
            count(CNT_READ_FAIL, 1);
            return 0;
        }
    } else {
        if (ret <= 0)
            return 0;
        total = (u64)ret;
    }
    if (total == 0)
        return 0;
    emit_call(ctx, &copy, id, total, is_read ? DIR_RECV : DIR_SEND);
    return 0;
}

int probe_write_enter(struct pt_regs *ctx) { return stash_enter(0, ctx, 0); }
int probe_write_ex_enter(struct pt_regs *ctx) { return stash_enter(0, ctx, 1); }
int probe_read_enter(struct pt_regs *ctx) { return stash_enter(1, ctx, 0); }
int probe_read_ex_enter(struct pt_regs *ctx) { return stash_enter(1, ctx, 1); }
int probe_write_internal_enter(struct pt_regs *ctx) { return stash_enter(0, ctx, 2); }
int probe_read_internal_enter(struct pt_regs *ctx) { return stash_enter(1, ctx, 2); }
int probe_write_return(struct pt_regs *ctx) { return stash_return(0, ctx); }
int probe_read_return(struct pt_regs *ctx) { return stash_return(1, ctx); }

static __always_inline void emit_meta(u8 kind, u64 conn, u8 dir) {
    struct rec_hdr h = {};
    h.ts = bpf_ktime_get_ns();
    h.pid_tgid = bpf_get_current_pid_tgid();
    h.conn = conn;
    h.kind = kind;
    h.dir = dir;
    bpf_get_current_comm(&h.comm, sizeof(h.comm));
    if (events.ringbuf_output(&h, sizeof(h), RB_FLAGS) != 0)
        count(CNT_RB_FAIL, 1);
}

// The process is the TLS server on this connection: its traffic is inbound, not what it sends
// to an LLM API. Unless config[1] asks for inbound traffic, its bytes are never copied.
int probe_set_accept_state(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    u32 one = 1;
    u32 *inbound = config.lookup(&one);
    if (inbound && *inbound)
        return 0;
    struct skip_key_t k = {};
    k.ssl = PT_REGS_PARM1(ctx);
    k.tgid = id >> 32;
    u8 yes = 1;
    skip_conn.update(&k, &yes);
    return 0;
}

int probe_ssl_free(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    if (!traced(tgid))
        return 0;
    struct skip_key_t sk = {};
    sk.ssl = PT_REGS_PARM1(ctx);
    sk.tgid = tgid;
    skip_conn.delete(&sk);   // the SSL* may be reused for a new connection
    struct conn_key_t ck = {};
    ck.ssl = PT_REGS_PARM1(ctx);
    ck.tgid = tgid;
    int known = 0;
    ck.dir = DIR_SEND;
    if (conn_state.lookup(&ck)) {
        known = 1;
        conn_state.delete(&ck);
    }
    ck.dir = DIR_RECV;
    if (conn_state.lookup(&ck)) {
        known = 1;
        conn_state.delete(&ck);
    }
    if (known)
        emit_meta(KIND_SSL_FREE, ck.ssl, 0);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec) {
    u32 cpu = bpf_get_smp_processor_id();
    struct rec_t *r = scratch.lookup(&cpu);
    if (!r)
        return 0;
    __builtin_memset(&r->h, 0, sizeof(r->h));
    r->h.ts = bpf_ktime_get_ns();
    r->h.pid_tgid = bpf_get_current_pid_tgid();
    r->h.kind = KIND_EXEC;
    bpf_get_current_comm(&r->h.comm, sizeof(r->h.comm));
    unsigned short loc = args->data_loc_filename & 0xFFFF;
    long n = bpf_probe_read_kernel_str(r->data, 256, (char *)args + loc);
    if (n < 0)
        n = 0;
    r->h.len = n & 0xff;
    u32 sz = sizeof(struct rec_hdr) + (n & 0xff);
    if (events.ringbuf_output(r, sz, RB_FLAGS) != 0)
        count(CNT_RB_FAIL, 1);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
    stash_write.delete(&id);
    stash_read.delete(&id);
    if ((u32)id != (u32)(id >> 32))
        return 0;   // a thread, not the process
    u32 tgid = id >> 32;
    allow_tgid.delete(&tgid);
    emit_meta(KIND_EXIT, 0, 0);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_fork) {
    u32 zero = 0;
    u32 *on = config.lookup(&zero);
    if (!on || *on == 0)
        return 0;
    u32 parent = bpf_get_current_pid_tgid() >> 32;
    u32 *v = allow_tgid.lookup(&parent);
    if (!v || *v != 2)
        return 0;
    u32 child = args->child_pid;
    u32 two = 2;
    allow_tgid.update(&child, &two);
    return 0;
}
