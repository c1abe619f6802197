/* loadgen: a WebSocket load generator for verb's end-to-end benchmarks.
 *
 * Plain C, libc only, one thread, non-blocking sockets on epoll (level-triggered). Built at run
 * time by benchmarks/e2e.py:  cc -O2 -o loadgen loadgen.c   (Linux only: epoll, /proc).
 * Prints one JSON object on stdout (idle mode prints a "ready" line first); diagnostics go to
 * stderr. Every phase is bounded in time; the program always exits by itself.
 *
 * Modes (--mode):
 *   echo       --conns N (64) connections each keep --inflight K (4) binary messages of --size S
 *              bytes in flight for --warmup then --duration seconds; counts echoed messages in
 *              the measured window, checks each echo's opcode and length and (unless
 *              --no-verify) its bytes.
 *   latency    echo with 1 connection and 1 message in flight; round-trip times
 *              (CLOCK_MONOTONIC, from queueing the frame to the last byte of its echo) give
 *              p50/p90/p99/p99.9/max in microseconds.
 *   handshake  --concurrency C (16) workers, each looping: connect, upgrade request, read the 101
 *              (Sec-WebSocket-Accept checked), send a close frame (1000), wait for the server's
 *              close frame and its TCP close, close the socket. Counts 101s per second.
 *   broadcast  N subscribers on /sub (the server subscribes them when they open) and one trigger
 *              connection on /pub. The trigger sends the text "count" until the server answers
 *              with a number >= N, then "go <B> <S>" (--batch B, 10): the server publishes B binary
 *              messages of S bytes to every subscriber, the i-th of each batch (i from 0) made of
 *              S bytes equal to i & 255, so each subscriber checks it gets every message once,
 *              in order. One batch warms up; then batches are sent while at most
 *              two are outstanding, for --duration seconds (or --count messages); deliveries/s is
 *              measured from the first measured "go" to the last delivery.
 *   idle       opens N connections on / (offering permessage-deflate with --deflate), each sends one
 *              --touch-size byte message (16; 0 for none) and gets its echo, then prints
 *              {"ready": ...} and holds them until a line arrives on stdin (or --hold seconds),
 *              then closes them all cleanly and prints the result.
 *
 * Frames we send are masked as RFC 6455 §5.3 requires. The echo/latency payload frames are built
 * once: one random masking key per run, shared by every frame (documented limitation: a server
 * cannot exploit a fixed key without breaking the protocol, and building frames once keeps the
 * client's CPU for I/O). Small frames (close, pong, trigger text, idle touch) get a fresh random
 * key each. With --server-pid the server's CPU time (utime+stime from /proc/<pid>/stat) is read
 * at the edges of the measured window; the client's own CPU time comes from getrusage.
 */
#define _GNU_SOURCE
#include "ws_common.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum { MODE_ECHO, MODE_LATENCY, MODE_HANDSHAKE, MODE_BROADCAST, MODE_IDLE };
enum { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DONE };
enum { ROLE_ECHO, ROLE_SUB, ROLE_TRIGGER, ROLE_HS, ROLE_IDLE };

#define SBUF_CAP 1024
#define HS_CAP 4096
#define REQ_AT 3072 /* the request is kept at hs + REQ_AT, the response read into hs[0..REQ_AT) */
#define MAXEV 1024
#define STDIN_TAG 0xFFFFFFFFu
#define MAX_FRAME_LEN (1ull << 31)

typedef struct conn {
    int fd, state, role, want_out, in_payload, in_msg, close_sent, got_close;
    char *hs;
    int hs_len, req_off, req_len;
    char accept[29];
    const char *path;
    uint64_t deadline;
    /* receive: frame header bytes so far, then the payload of the current frame */
    unsigned char hdr[14];
    int hdr_have;
    uint64_t frame_left, msg_off;
    int frame_op, frame_fin, msg_op, msg_rsv1;
    unsigned char ctl[125];
    int ctl_len;
    char text[64];
    int text_len;
    /* send: big echo frames owed (from txbuf) and small frames (sbuf) */
    int pending, inflight;
    size_t tx_off;
    unsigned char sbuf[SBUF_CAP];
    int s_len, s_off;
    uint64_t *tsend; /* latency ring of send times, K entries */
    int ts_head, ts_count;
    uint32_t seq;
    uint64_t msgs;
} conn;

static struct {
    int mode;
    const char *host;
    int port, conns, inflight, concurrency, connect_concurrency, batch, verify, deflate;
    size_t size, touch_size;
    double duration, warmup, hold, timeout;
    long count;
    int server_pid;
} opt = {MODE_ECHO, "127.0.0.1", 0, -1, -1, 16, 256, 10, 1, 0, 64, 16, 5.0, 1.0, 120.0, 10.0, 0, 0};

static struct {
    uint64_t connect_errors, handshake_errors, bad_accept, disconnects, protocol_errors,
        verify_errors, length_errors, timeouts, clean_closes, closes_without_frame,
        server_initiated_closes, compressed, pongs, dropped_small;
} err;

static int epfd;
static conn *conns;
static int nconns;
static int g_connecting, g_open, g_active, running, measuring;
static unsigned char *plain, *txbuf;
static size_t flen;
static uint64_t total_msgs, deliveries, handshakes, idle_echoes, deflate_negotiated;
static long trigger_count = -1;
static uint64_t *samples;
static size_t nsamples, samples_cap;
static struct sockaddr_in addr;

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* utime+stime of a process (all its threads), seconds; -1 when unknown. */
static double proc_cpu(int pid) {
    char path[64], buf[2048], *p;
    unsigned long long ut = 0, stt = 0;
    int fd, i;
    ssize_t n;
    if (pid <= 0) return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    p = strrchr(buf, ')');
    if (!p) return -1;
    p += 2; /* field 3 (state) starts here; utime is field 14, stime 15 */
    for (i = 3; i < 14 && p; i++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    if (!p || sscanf(p, "%llu %llu", &ut, &stt) != 2) return -1;
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

static void set_out(conn *c, int on) {
    struct epoll_event ev;
    if (c->want_out == on || c->fd < 0) return;
    c->want_out = on;
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.u32 = (uint32_t)(c - conns);
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_release(conn *c) {
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
        g_active--;
        if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) g_connecting--;
        if (c->state == ST_OPEN || c->state == ST_CLOSING) g_open--;
    }
    free(c->hs);
    c->hs = NULL;
    c->state = ST_DONE;
}

static void conn_start(conn *c, int role, const char *path) {
    struct epoll_event ev;
    unsigned char keybytes[16];
    char key[25];
    int i, one = 1, fd;
    uint64_t r;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->role = role;
    c->path = path;
    c->state = ST_DONE;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err.connect_errors++;
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        err.connect_errors++;
        close(fd);
        return;
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
    g_connecting++;
    g_active++;
    c->hs = malloc(HS_CAP);
    for (i = 0; i < 16; i += 8) {
        r = rng_next();
        memcpy(keybytes + i, &r, 8);
    }
    base64(keybytes, 16, key);
    ws_accept(key, 24, c->accept);
    c->req_len = snprintf(c->hs + REQ_AT, HS_CAP - REQ_AT,
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n%s\r\n",
                          path, opt.host, opt.port, key,
                          opt.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                        "client_max_window_bits\r\n" : "");
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = (uint32_t)(c - conns);
    c->want_out = 1;
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Queue a small masked frame (fresh random key). */
static void queue_small(conn *c, int opcode, const void *payload, size_t len) {
    unsigned char *f;
    uint32_t key = (uint32_t)rng_next();
    size_t i;
    if (c->s_off == c->s_len) c->s_off = c->s_len = 0;
    if (len > 125 || c->s_len + 6 + len > SBUF_CAP) {
        err.dropped_small++;
        return;
    }
    f = c->sbuf + c->s_len;
    f[0] = (unsigned char)(0x80 | opcode);
    f[1] = (unsigned char)(0x80 | len);
    memcpy(f + 2, &key, 4);
    for (i = 0; i < len; i++) f[6 + i] = ((const unsigned char *)payload)[i] ^ f[2 + (i & 3)];
    c->s_len += (int)(6 + len);
}

static void on_closed(conn *c);

static void fail(conn *c, uint64_t *counter) {
    if (counter) (*counter)++;
    conn_release(c);
    on_closed(c);
}

static void flush(conn *c) {
    ssize_t n;
    for (;;) {
        if (c->s_off < c->s_len && c->tx_off == 0) {
            n = write(c->fd, c->sbuf + c->s_off, (size_t)(c->s_len - c->s_off));
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) break;
                fail(c, c->state == ST_CLOSING ? NULL : &err.disconnects);
                return;
            }
            c->s_off += (int)n;
            if (c->s_off < c->s_len) break;
            c->s_off = c->s_len = 0;
            continue;
        }
        if (c->pending > 0) {
            size_t total = (size_t)c->pending * flen - c->tx_off;
            n = write(c->fd, txbuf + c->tx_off, total);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) break;
                fail(c, &err.disconnects);
                return;
            }
            c->tx_off += (size_t)n;
            c->pending -= (int)(c->tx_off / flen);
            c->tx_off %= flen;
            if ((size_t)n < total) break;
            continue;
        }
        set_out(c, 0);
        return;
    }
    set_out(c, 1);
}

static void send_close(conn *c, int code) {
    unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    if (c->close_sent) return;
    c->close_sent = 1;
    c->state = ST_CLOSING;
    c->deadline = now_ns() + 3000000000ull;
    queue_small(c, 8, p, 2);
    flush(c);
}

/* ---- modes: what happens when a connection opens, a message arrives, a connection ends ---- */

static void on_open(conn *c) {
    if (c->role == ROLE_HS) {
        handshakes++;
        send_close(c, 1000);
    }
}

static void on_closed(conn *c) { (void)c; }

static void push_send_time(conn *c) {
    if (!c->tsend) return;
    c->tsend[(c->ts_head + c->ts_count) % opt.inflight] = now_ns();
    c->ts_count++;
}

static void on_payload(conn *c, const unsigned char *p, size_t m) {
    size_t i;
    if (c->msg_rsv1) return; /* compressed by the server: neither length nor bytes checkable */
    if (c->msg_op == 1) {
        for (i = 0; i < m && c->text_len < (int)sizeof c->text - 1; i++) c->text[c->text_len++] = (char)p[i];
        return;
    }
    if (!opt.verify) return;
    if (c->role == ROLE_SUB) {
        unsigned char want = (unsigned char)(c->seq % (uint32_t)opt.batch);
        for (i = 0; i < m; i++)
            if (p[i] != want) {
                err.verify_errors++;
                return;
            }
    } else if (c->role == ROLE_ECHO || c->role == ROLE_IDLE) {
        size_t expect = c->role == ROLE_IDLE ? opt.touch_size : opt.size;
        if (c->msg_off + m > expect || memcmp(plain + c->msg_off, p, m) != 0) err.verify_errors++;
    }
}

static void on_message(conn *c) {
    uint64_t len = c->msg_off;
    c->msgs++;
    if (c->msg_rsv1) err.compressed++;
    switch (c->role) {
    case ROLE_ECHO:
        if (!c->msg_rsv1 && (c->msg_op != 2 || len != opt.size)) err.length_errors++;
        total_msgs++;
        c->inflight--;
        if (c->tsend && c->ts_count > 0) {
            uint64_t rtt = now_ns() - c->tsend[c->ts_head];
            c->ts_head = (c->ts_head + 1) % opt.inflight;
            c->ts_count--;
            if (measuring && opt.mode == MODE_LATENCY) {
                if (nsamples == samples_cap) {
                    samples_cap = samples_cap ? samples_cap * 2 : 65536;
                    samples = realloc(samples, samples_cap * sizeof *samples);
                }
                samples[nsamples++] = rtt;
            }
        }
        if (running) { /* written by on_readable after the whole chunk is parsed (cork) */
            c->pending++;
            c->inflight++;
            push_send_time(c);
        }
        break;
    case ROLE_IDLE:
        if (!c->msg_rsv1 && len != opt.touch_size) err.length_errors++;
        idle_echoes++;
        break;
    case ROLE_SUB:
        if (!c->msg_rsv1 && (c->msg_op != 2 || len != opt.size)) err.length_errors++;
        c->seq++;
        deliveries++;
        break;
    case ROLE_TRIGGER:
        c->text[c->text_len] = 0;
        trigger_count = strtol(c->text, NULL, 10);
        break;
    default:
        break;
    }
    c->text_len = 0;
}

static void on_control(conn *c) {
    if (c->frame_op == 9) { /* ping: answer with a pong carrying its payload (RFC 6455 §5.5.3) */
        err.pongs++;
        queue_small(c, 10, c->ctl, (size_t)c->ctl_len);
        flush(c);
    } else if (c->frame_op == 8) {
        c->got_close = 1;
        if (!c->close_sent) {
            err.server_initiated_closes++;
            send_close(c, c->ctl_len >= 2 ? (c->ctl[0] << 8 | c->ctl[1]) : 1000);
        }
        /* now wait for the server to close the TCP connection (RFC 6455 §7.1.1) */
    }
}

/* Parse server frames from a chunk of any size (frames may be split anywhere). */
static void feed(conn *c, const unsigned char *p, size_t n) {
    while (n > 0 && c->fd >= 0) {
        if (!c->in_payload) {
            int need = 2;
            unsigned char b1;
            if (c->hdr_have < 2) {
                c->hdr[c->hdr_have++] = *p++;
                n--;
                continue;
            }
            b1 = c->hdr[1];
            if (b1 & 0x80) { /* a server must not mask (RFC 6455 §5.1) */
                fail(c, &err.protocol_errors);
                return;
            }
            need += (b1 & 0x7f) == 126 ? 2 : (b1 & 0x7f) == 127 ? 8 : 0;
            while (c->hdr_have < need && n > 0) {
                c->hdr[c->hdr_have++] = *p++;
                n--;
            }
            if (c->hdr_have < need) return;
            {
                uint64_t len = b1 & 0x7f;
                int op = c->hdr[0] & 0x0f, i;
                if (len == 126) len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
                else if (len == 127)
                    for (len = 0, i = 2; i < 10; i++) len = len << 8 | c->hdr[i];
                if ((c->hdr[0] & 0x30) || len > MAX_FRAME_LEN ||
                    ((op & 8) && (len > 125 || !(c->hdr[0] & 0x80))) ||
                    (op == 0 && !c->in_msg) || ((op == 1 || op == 2) && c->in_msg) ||
                    (op > 2 && op < 8) || op > 10) {
                    fail(c, &err.protocol_errors);
                    return;
                }
                c->frame_op = op;
                c->frame_fin = c->hdr[0] & 0x80;
                if (op == 1 || op == 2) {
                    c->in_msg = 1;
                    c->msg_op = op;
                    c->msg_off = 0;
                    c->msg_rsv1 = (c->hdr[0] & 0x40) != 0;
                    c->text_len = 0;
                } else if (op & 8) {
                    c->ctl_len = 0;
                } else if (c->hdr[0] & 0x40) {
                    fail(c, &err.protocol_errors);
                    return;
                }
                c->frame_left = len;
                c->in_payload = 1;
                c->hdr_have = 0;
            }
        } else {
            size_t m = n < c->frame_left ? n : (size_t)c->frame_left;
            if (c->frame_op & 8) {
                memcpy(c->ctl + c->ctl_len, p, m);
                c->ctl_len += (int)m;
            } else {
                on_payload(c, p, m);
                c->msg_off += m;
            }
            p += m;
            n -= m;
            c->frame_left -= m;
        }
        if (c->in_payload && c->frame_left == 0) {
            c->in_payload = 0;
            if (c->frame_op & 8) {
                on_control(c);
            } else if (c->frame_fin) {
                c->in_msg = 0;
                on_message(c);
            }
        }
    }
}

static void handshake_done(conn *c) {
    char *end, *head = c->hs;
    const char *v;
    size_t vlen, used;
    head[c->hs_len] = 0;
    end = strstr(head, "\r\n\r\n");
    if (!end) {
        if (c->hs_len >= REQ_AT - 1) fail(c, &err.handshake_errors);
        return;
    }
    end[2] = 0; /* keep the last header line's CRLF for find_header */
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        fail(c, &err.handshake_errors);
        return;
    }
    v = find_header(head, "Sec-WebSocket-Accept", &vlen);
    if (!v || vlen != 28 || memcmp(v, c->accept, 28) != 0) {
        fail(c, &err.bad_accept);
        return;
    }
    v = find_header(head, "Sec-WebSocket-Extensions", &vlen);
    if (v && vlen >= 18 && strncasecmp(v, "permessage-deflate", 18) == 0) {
        if (!opt.deflate) {
            fail(c, &err.handshake_errors);
            return;
        }
        deflate_negotiated++;
    }
    used = (size_t)(end + 4 - head);
    c->state = ST_OPEN;
    g_connecting--;
    g_open++;
    c->deadline = 0;
    on_open(c);
    if (c->fd >= 0 && used < (size_t)c->hs_len) { /* the 101 coalesced with the first frames */
        unsigned char rest[REQ_AT];
        size_t k = (size_t)c->hs_len - used;
        memcpy(rest, c->hs + used, k);
        free(c->hs);
        c->hs = NULL;
        feed(c, rest, k);
    } else {
        free(c->hs);
        c->hs = NULL;
    }
}

static unsigned char rbuf[1 << 18];

static void on_readable(conn *c) {
    ssize_t n;
    if (c->state == ST_CONNECTING) return; /* wait for EPOLLOUT */
    if (c->state == ST_HANDSHAKE) {
        n = read(c->fd, c->hs + c->hs_len, (size_t)(REQ_AT - 1 - c->hs_len));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            fail(c, &err.handshake_errors);
            return;
        }
        if (n > 0) {
            c->hs_len += (int)n;
            handshake_done(c);
        }
        return;
    }
    n = read(c->fd, rbuf, sizeof rbuf);
    if (n > 0) {
        feed(c, rbuf, (size_t)n);
        if (c->fd >= 0 && c->pending > 0 && !c->want_out) flush(c);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n == 0 && c->got_close) {
        err.clean_closes++;
        fail(c, NULL);
    } else if (c->state == ST_CLOSING) { /* we sent close; the server hung up without one */
        fail(c, &err.closes_without_frame);
    } else {
        fail(c, &err.disconnects);
    }
}

static void on_writable(conn *c) {
    ssize_t n;
    if (c->state == ST_CONNECTING) {
        int e = 0;
        socklen_t l = sizeof e;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
        if (e) {
            fail(c, &err.connect_errors);
            return;
        }
        c->state = ST_HANDSHAKE;
    }
    if (c->state == ST_HANDSHAKE) {
        if (c->req_off < c->req_len) {
            n = write(c->fd, c->hs + REQ_AT + c->req_off, (size_t)(c->req_len - c->req_off));
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                fail(c, &err.handshake_errors);
                return;
            }
            if (n > 0) c->req_off += (int)n;
        }
        if (c->req_off >= c->req_len) set_out(c, 0);
        return;
    }
    flush(c);
}

static void check_deadlines(uint64_t t) {
    int i;
    for (i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        if (c->fd >= 0 && c->deadline && t > c->deadline) fail(c, &err.timeouts);
    }
}

static uint64_t last_scan;
static int stdin_ready;

static void poll_events(int timeout_ms) {
    struct epoll_event evs[MAXEV];
    int n, i;
    uint64_t t;
    n = epoll_wait(epfd, evs, MAXEV, timeout_ms);
    for (i = 0; i < n; i++) {
        conn *c;
        if (evs[i].data.u32 == STDIN_TAG) {
            stdin_ready = 1;
            epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
            continue;
        }
        c = &conns[evs[i].data.u32];
        if (c->fd < 0) continue;
        if (evs[i].events & (EPOLLOUT | EPOLLERR)) on_writable(c);
        if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c);
    }
    t = now_ns();
    if (t - last_scan > 100000000ull) {
        last_scan = t;
        check_deadlines(t);
    }
}

static int ms_until(uint64_t deadline) {
    uint64_t t = now_ns();
    if (t >= deadline) return 0;
    return (int)((deadline - t) / 1000000ull) + 1;
}

/* Open conns[first .. first+count) with at most connect_concurrency handshakes at a time. */
static int open_conns(int first, int count, int role, const char *path) {
    int started = 0, done;
    uint64_t deadline = now_ns() + (uint64_t)((opt.timeout + count / 500.0) * 1e9);
    for (;;) {
        while (started < count && g_connecting < opt.connect_concurrency) {
            conn_start(&conns[first + started], role, path);
            started++;
        }
        done = 0;
        if (started == count) {
            int i;
            done = 1;
            for (i = first; i < first + count; i++)
                if (conns[i].state == ST_CONNECTING || conns[i].state == ST_HANDSHAKE) done = 0;
        }
        if (done || now_ns() > deadline) break;
        poll_events(10);
    }
    {
        int i, ok = 0;
        for (i = first; i < first + count; i++) {
            if (conns[i].state == ST_OPEN) ok++;
            else if (conns[i].fd >= 0) fail(&conns[i], &err.timeouts);
        }
        return ok;
    }
}

/* Close every open connection cleanly (close frame, wait for the server's, then its FIN). */
static void close_all(double seconds) {
    int i;
    uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    running = 0;
    for (i = 0; i < nconns; i++)
        if (conns[i].fd >= 0 && conns[i].state == ST_OPEN) send_close(&conns[i], 1000);
    while (g_active > 0 && now_ns() < deadline) poll_events(ms_until(deadline));
    for (i = 0; i < nconns; i++)
        if (conns[i].fd >= 0) fail(&conns[i], &err.timeouts);
}

/* ---- output ---------------------------------------------------------------------------------- */

static void print_errors(void) {
    printf("\"errors\": {\"connect\": %llu, \"handshake\": %llu, \"bad_accept\": %llu, "
           "\"disconnects\": %llu, \"protocol\": %llu, \"verify\": %llu, \"length\": %llu, "
           "\"timeouts\": %llu, \"closes_without_frame\": %llu, \"dropped_small\": %llu}, "
           "\"clean_closes\": %llu, \"server_initiated_closes\": %llu, \"pongs\": %llu, "
           "\"compressed_msgs\": %llu",
           (unsigned long long)err.connect_errors, (unsigned long long)err.handshake_errors,
           (unsigned long long)err.bad_accept, (unsigned long long)err.disconnects,
           (unsigned long long)err.protocol_errors, (unsigned long long)err.verify_errors,
           (unsigned long long)err.length_errors, (unsigned long long)err.timeouts,
           (unsigned long long)err.closes_without_frame, (unsigned long long)err.dropped_small,
           (unsigned long long)err.clean_closes, (unsigned long long)err.server_initiated_closes,
           (unsigned long long)err.pongs, (unsigned long long)err.compressed);
}

static const char *mode_name(void) {
    static const char *names[] = {"echo", "latency", "handshake", "broadcast", "idle"};
    return names[opt.mode];
}

static void print_common(double elapsed, double ccpu, double scpu) {
    printf("\"mode\": \"%s\", \"elapsed_s\": %.6f, \"client_cpu_s\": %.6f, "
           "\"client_cpu_util\": %.4f, \"server_cpu_s\": %.4f, ",
           mode_name(), elapsed, ccpu, elapsed > 0 ? ccpu / elapsed : 0.0, scpu);
}

static void error_exit(const char *what) {
    printf("{\"mode\": \"%s\", \"error\": \"%s\", \"open\": %d, ", mode_name(), what, g_open);
    print_errors();
    printf("}\n");
    fflush(stdout);
    exit(2);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p) {
    size_t i;
    if (!nsamples) return 0;
    i = (size_t)(p * (double)nsamples);
    if (i >= nsamples) i = nsamples - 1;
    return (double)samples[i] / 1000.0;
}

/* ---- runs ------------------------------------------------------------------------------------ */

static void build_frames(void) {
    size_t i, hl;
    unsigned char hdr[14];
    uint32_t key = (uint32_t)rng_next() | 1u;
    unsigned char k[4];
    memcpy(k, &key, 4);
    hdr[0] = 0x82;
    if (opt.size < 126) {
        hdr[1] = (unsigned char)(0x80 | opt.size);
        hl = 2;
    } else if (opt.size < 65536) {
        hdr[1] = 0x80 | 126;
        hdr[2] = (unsigned char)(opt.size >> 8);
        hdr[3] = (unsigned char)opt.size;
        hl = 4;
    } else {
        hdr[1] = 0x80 | 127;
        for (i = 0; i < 8; i++) hdr[2 + i] = (unsigned char)((uint64_t)opt.size >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(hdr + hl, k, 4);
    hl += 4;
    flen = hl + opt.size;
    txbuf = malloc(flen * (size_t)opt.inflight);
    memcpy(txbuf, hdr, hl);
    for (i = 0; i < opt.size; i++) txbuf[hl + i] = plain[i] ^ k[i & 3];
    for (i = 1; i < (size_t)opt.inflight; i++) memcpy(txbuf + i * flen, txbuf, flen);
}

static void run_echo(void) {
    int i, open;
    uint64_t t0, ta = 0, tb = 0, ma = 0, mb = 0;
    double ca = 0, cb = 0, sa = 0, sb = 0;
    build_frames();
    open = open_conns(0, opt.conns, ROLE_ECHO, "/");
    if (open < opt.conns) error_exit("not every connection opened");
    running = 1;
    for (i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        if (opt.mode == MODE_LATENCY) c->tsend = calloc((size_t)opt.inflight, sizeof(uint64_t));
        c->pending = c->inflight = opt.inflight;
        for (int j = 0; j < opt.inflight; j++) push_send_time(c);
        flush(c);
    }
    t0 = now_ns();
    {
        uint64_t tm = t0 + (uint64_t)(opt.warmup * 1e9), te = tm + (uint64_t)(opt.duration * 1e9);
        while (g_open > 0) {
            uint64_t t = now_ns();
            if (!measuring && t >= tm) {
                measuring = 1;
                ta = t; ma = total_msgs; ca = self_cpu(); sa = proc_cpu(opt.server_pid);
            }
            if (t >= te) {
                tb = t; mb = total_msgs; cb = self_cpu(); sb = proc_cpu(opt.server_pid);
                break;
            }
            poll_events(ms_until(measuring ? te : tm));
        }
    }
    measuring = 0;
    running = 0;
    if (!tb) error_exit("every connection was lost");
    { /* let the messages in flight come back, then close */
        uint64_t dl = now_ns() + 5000000000ull;
        int left;
        do {
            left = 0;
            for (i = 0; i < nconns; i++)
                if (conns[i].fd >= 0) left += conns[i].inflight;
            if (left) poll_events(ms_until(dl));
        } while (left && now_ns() < dl);
    }
    close_all(5.0);
    {
        double el = secs(tb - ta), scpu = sa >= 0 && sb >= 0 ? sb - sa : -1;
        uint64_t msgs = mb - ma;
        printf("{");
        print_common(el, cb - ca, scpu);
        printf("\"conns\": %d, \"inflight\": %d, \"size\": %zu, \"verify\": %s, "
               "\"messages\": %llu, \"msgs_per_s\": %.1f, \"mbytes_per_s\": %.2f, "
               "\"server_cpu_us_per_msg\": %.4f, \"client_cpu_us_per_msg\": %.4f, ",
               opt.conns, opt.inflight, opt.size, opt.verify ? "true" : "false",
               (unsigned long long)msgs, msgs / el, msgs * (double)opt.size / el / 1e6,
               scpu >= 0 && msgs ? scpu * 1e6 / msgs : -1.0, msgs ? (cb - ca) * 1e6 / msgs : -1.0);
        if (opt.mode == MODE_LATENCY) {
            qsort(samples, nsamples, sizeof *samples, cmp_u64);
            printf("\"samples\": %zu, \"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, "
                   "\"p999_us\": %.2f, \"max_us\": %.2f, ",
                   nsamples, pct(0.5), pct(0.9), pct(0.99), pct(0.999),
                   nsamples ? samples[nsamples - 1] / 1000.0 : 0.0);
        }
        print_errors();
        printf("}\n");
    }
}

static void run_handshake(void) {
    int i;
    uint64_t t0 = now_ns(), tm = t0 + (uint64_t)(opt.warmup * 1e9),
             te = tm + (uint64_t)(opt.duration * 1e9), ta = 0, tb = 0, ha = 0, hb = 0;
    double ca = 0, cb = 0, sa = 0, sb = 0;
    running = 1;
    for (;;) {
        uint64_t t = now_ns();
        if (!measuring && t >= tm) {
            measuring = 1;
            ta = t; ha = handshakes; ca = self_cpu(); sa = proc_cpu(opt.server_pid);
        }
        if (t >= te) {
            tb = t; hb = handshakes; cb = self_cpu(); sb = proc_cpu(opt.server_pid);
            break;
        }
        if (err.connect_errors > 1000) error_exit("too many connect errors");
        for (i = 0; i < nconns; i++)  /* (re)start workers between event batches only */
            if (conns[i].fd < 0) conn_start(&conns[i], ROLE_HS, "/");
        poll_events(ms_until(measuring ? te : tm));
    }
    running = 0;
    {
        uint64_t dl = now_ns() + 5000000000ull;
        while (g_active > 0 && now_ns() < dl) poll_events(ms_until(dl));
        for (i = 0; i < nconns; i++)
            if (conns[i].fd >= 0) fail(&conns[i], &err.timeouts);
    }
    {
        double el = secs(tb - ta), scpu = sa >= 0 && sb >= 0 ? sb - sa : -1;
        uint64_t h = hb - ha;
        printf("{");
        print_common(el, cb - ca, scpu);
        printf("\"concurrency\": %d, \"handshakes\": %llu, \"handshakes_per_s\": %.1f, "
               "\"server_cpu_us_per_handshake\": %.3f, ",
               opt.concurrency, (unsigned long long)h, h / el,
               scpu >= 0 && h ? scpu * 1e6 / h : -1.0);
        print_errors();
        printf("}\n");
    }
}

static void trigger_send(conn *t, const char *text) {
    queue_small(t, 1, text, strlen(text));
    flush(t);
}

static void run_broadcast(void) {
    conn *t;
    char cmd[64];
    long published = 0, batch = opt.batch;
    uint64_t deadline, ta, tb = 0, da;
    double ca, cb, sa, sb;
    int open, timed_out = 0;
    open = open_conns(0, opt.conns, ROLE_SUB, "/sub");
    if (open < opt.conns) error_exit("not every subscriber opened");
    if (open_conns(opt.conns, 1, ROLE_TRIGGER, "/pub") < 1) error_exit("trigger did not open");
    t = &conns[opt.conns];
    deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
    while (trigger_count < opt.conns && now_ns() < deadline && t->fd >= 0) { /* all subscribed? */
        uint64_t ask = now_ns() + 50000000ull;
        trigger_count = -1;
        trigger_send(t, "count");
        while (trigger_count < 0 && now_ns() < deadline && t->fd >= 0) poll_events(ms_until(deadline));
        if (trigger_count < opt.conns) while (now_ns() < ask) poll_events(ms_until(ask));
    }
    if (trigger_count < opt.conns) error_exit("the server did not report every subscriber");
    /* warm-up: one batch, all delivered */
    snprintf(cmd, sizeof cmd, "go %ld %zu", batch, opt.size);
    trigger_send(t, cmd);
    published += batch;
    deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
    while (deliveries < (uint64_t)published * opt.conns && now_ns() < deadline && g_open > 0)
        poll_events(ms_until(deadline));
    if (deliveries < (uint64_t)published * opt.conns) error_exit("warm-up batch not delivered");
    ta = now_ns(); da = deliveries; ca = self_cpu(); sa = proc_cpu(opt.server_pid);
    {
        uint64_t te = ta + (uint64_t)(opt.duration * 1e9);
        long target = opt.count > 0 ? opt.count + batch : -1;
        while (now_ns() < te && (target < 0 || published < target) && t->fd >= 0) {
            if (deliveries >= (uint64_t)(published - batch) * opt.conns) {
                trigger_send(t, cmd);
                published += batch;
                continue;
            }
            poll_events(ms_until(te));
        }
        deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
        while (deliveries < (uint64_t)published * opt.conns && now_ns() < deadline && g_open > 0)
            poll_events(ms_until(deadline));
        timed_out = deliveries < (uint64_t)published * opt.conns;
        tb = now_ns(); cb = self_cpu(); sb = proc_cpu(opt.server_pid);
    }
    close_all(10.0);
    {
        double el = secs(tb - ta), scpu = sa >= 0 && sb >= 0 ? sb - sa : -1;
        uint64_t d = deliveries - da, expected = (uint64_t)(published - batch) * opt.conns;
        printf("{");
        print_common(el, cb - ca, scpu);
        printf("\"subscribers\": %d, \"size\": %zu, \"batch\": %ld, \"messages_published\": %ld, "
               "\"deliveries\": %llu, \"expected_deliveries\": %llu, \"complete\": %s, "
               "\"deliveries_per_s\": %.1f, \"server_cpu_us_per_delivery\": %.4f, ",
               opt.conns, opt.size, batch, published - batch, (unsigned long long)d,
               (unsigned long long)expected, timed_out ? "false" : "true", d / el,
               scpu >= 0 && d ? scpu * 1e6 / d : -1.0);
        print_errors();
        printf("}\n");
    }
}

static void run_idle(void) {
    struct epoll_event ev;
    int i, open;
    uint64_t deadline, t0 = now_ns();
    double hold_s;
    open = open_conns(0, opt.conns, ROLE_IDLE, "/");
    if (opt.touch_size > 0) {
        for (i = 0; i < nconns; i++)
            if (conns[i].state == ST_OPEN) {
                queue_small(&conns[i], 2, plain, opt.touch_size);
                flush(&conns[i]);
            }
        deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
        while (idle_echoes < (uint64_t)open && now_ns() < deadline && g_open > 0)
            poll_events(ms_until(deadline));
    }
    printf("{\"ready\": true, \"open\": %d, \"echoes\": %llu, \"deflate_negotiated\": %llu, "
           "\"setup_s\": %.3f}\n",
           g_open, (unsigned long long)idle_echoes, (unsigned long long)deflate_negotiated,
           secs(now_ns() - t0));
    fflush(stdout);
    ev.events = EPOLLIN;
    ev.data.u32 = STDIN_TAG;
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    deadline = now_ns() + (uint64_t)(opt.hold * 1e9);
    t0 = now_ns();
    while (!stdin_ready && now_ns() < deadline) poll_events(ms_until(deadline));
    hold_s = secs(now_ns() - t0);
    open = g_open; /* still open after the hold */
    close_all(10.0);
    printf("{\"mode\": \"idle\", \"conns\": %d, \"open_after_hold\": %d, \"hold_s\": %.3f, "
           "\"echoes\": %llu, \"deflate_offered\": %s, \"deflate_negotiated\": %llu, ",
           opt.conns, open, hold_s, (unsigned long long)idle_echoes,
           opt.deflate ? "true" : "false", (unsigned long long)deflate_negotiated);
    print_errors();
    printf("}\n");
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --mode echo|latency|handshake|broadcast|idle --port P [--host H]\n"
            "  [--conns N] [--inflight K] [--size S] [--duration D] [--warmup W] [--no-verify]\n"
            "  [--server-pid PID] [--deflate] [--concurrency C] [--connect-concurrency C]\n"
            "  [--batch B] [--count M] [--hold SECONDS] [--touch-size S] [--timeout SECONDS]\n"
            "  [--seed N]\n");
    exit(64);
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"mode", 1, 0, 'm'}, {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"conns", 1, 0, 'n'},
        {"inflight", 1, 0, 'k'}, {"size", 1, 0, 's'}, {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'w'}, {"no-verify", 0, 0, 'V'}, {"server-pid", 1, 0, 'P'},
        {"deflate", 0, 0, 'z'}, {"concurrency", 1, 0, 'c'}, {"connect-concurrency", 1, 0, 'C'},
        {"batch", 1, 0, 'b'}, {"count", 1, 0, 'M'}, {"hold", 1, 0, 'h'},
        {"touch-size", 1, 0, 't'}, {"timeout", 1, 0, 'T'}, {"seed", 1, 0, 'S'}, {0, 0, 0, 0}};
    int ch, i;
    uint64_t seed = now_ns() ^ ((uint64_t)getpid() << 32);
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            if (!strcmp(optarg, "echo")) opt.mode = MODE_ECHO;
            else if (!strcmp(optarg, "latency")) opt.mode = MODE_LATENCY;
            else if (!strcmp(optarg, "handshake")) opt.mode = MODE_HANDSHAKE;
            else if (!strcmp(optarg, "broadcast")) opt.mode = MODE_BROADCAST;
            else if (!strcmp(optarg, "idle")) opt.mode = MODE_IDLE;
            else usage();
            break;
        case 'H': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'n': opt.conns = atoi(optarg); break;
        case 'k': opt.inflight = atoi(optarg); break;
        case 's': opt.size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 'V': opt.verify = 0; break;
        case 'P': opt.server_pid = atoi(optarg); break;
        case 'z': opt.deflate = 1; break;
        case 'c': opt.concurrency = atoi(optarg); break;
        case 'C': opt.connect_concurrency = atoi(optarg); break;
        case 'b': opt.batch = atoi(optarg); break;
        case 'M': opt.count = atol(optarg); break;
        case 'h': opt.hold = atof(optarg); break;
        case 't': opt.touch_size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'T': opt.timeout = atof(optarg); break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (opt.port <= 0 || opt.port > 65535 || optind != argc) usage();
    if (opt.conns < 0) opt.conns = opt.mode == MODE_LATENCY ? 1 : opt.mode == MODE_ECHO ? 64 : 1000;
    if (opt.inflight < 0) opt.inflight = opt.mode == MODE_LATENCY ? 1 : 4;
    if (opt.conns < 1 || opt.inflight < 1 || opt.inflight > 4096 || opt.concurrency < 1 ||
        opt.connect_concurrency < 1 || opt.batch < 1 || opt.duration <= 0 || opt.warmup < 0 ||
        opt.size > (1u << 30) || opt.touch_size > 125 || opt.timeout <= 0 ||
        (opt.mode == MODE_ECHO && opt.size == 0))
        usage();
    rng_state = seed ? seed : 1;
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1) usage();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    {
        size_t psize = opt.size > opt.touch_size ? opt.size : opt.touch_size;
        plain = malloc(psize ? psize : 1);
        for (i = 0; (size_t)i < psize; i++) plain[i] = (unsigned char)(rng_next() >> 32);
    }
    nconns = opt.mode == MODE_HANDSHAKE ? opt.concurrency
             : opt.mode == MODE_BROADCAST ? opt.conns + 1 : opt.conns;
    conns = calloc((size_t)nconns, sizeof *conns);
    for (i = 0; i < nconns; i++) conns[i].fd = -1;
    last_scan = now_ns();
    switch (opt.mode) {
    case MODE_ECHO:
    case MODE_LATENCY: run_echo(); break;
    case MODE_HANDSHAKE: run_handshake(); break;
    case MODE_BROADCAST: run_broadcast(); break;
    case MODE_IDLE: run_idle(); break;
    }
    fflush(stdout);
    return 0;
}
