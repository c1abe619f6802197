/* cecho: a minimal WebSocket server in C, the "limit of this setup" row of the benchmarks.
 *
 * One thread, epoll (level-triggered), non-blocking sockets, libc only. Built at run time by
 * benchmarks/e2e.py:  cc -O2 -o cecho cecho.c.   Usage: cecho PORT [HOST]
 *
 * It serves the workloads every peer in benchmarks/peers/ serves:
 *   - any path: data frames are echoed (unmasked in place, same opcode and FIN bit), so
 *     fragmented messages echo as fragments; ping gets a pong; close gets a close, then the
 *     server closes the TCP connection.
 *   - /sub: the connection is a broadcast subscriber.
 *   - /pub: text "count" answers with the number of subscribers (as text); text "go <n> <size>"
 *     publishes n binary messages of <size> bytes to every subscriber, the i-th made of bytes
 *     equal to i & 255 (each frame built once, written to every subscriber).
 * Reads go into one shared buffer and frames are echoed as they stream in (a connection keeps
 * only its parser state and, while the kernel refuses bytes, an output buffer).
 * No extensions, no limits beyond 64 MiB frames: a benchmark peer, not a server to deploy.
 */
#define _GNU_SOURCE
#include "ws_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FRAME (64u << 20)
#define MAXEV 512

typedef struct buf {
    unsigned char *p;
    size_t len, cap, head; /* out buffers are consumed from head (no memmove per write) */
} buf;

typedef struct conn {
    int fd, ws, sub, pub, want_out, closing, dead;
    buf in, out; /* in: the HTTP request while incomplete; out: what the kernel refused */
    /* frame parser: header bytes so far, then the payload, unmasked and echoed as it streams */
    unsigned char hdr[14], ctl[128];
    int hdr_have, in_payload, op, keep, ctl_len;
    size_t left, moff;
    struct conn *next_sub, *prev_sub, *next_dead;
} conn;

static int epfd;
static conn *subs, *graveyard; /* closed connections, freed after the event batch */
static long nsubs;
static unsigned char rbuf[1 << 18];
static buf stage; /* frames produced while handling one read: written with one write() */

static void buf_reserve(buf *b, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
}

static void buf_put(buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_free(buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = b->head = 0;
}

/* XOR p[0..n) with the masking key, starting at key byte `off` (RFC 6455 §5.3). */
static void unmask(unsigned char *p, size_t n, const unsigned char key[4], size_t off) {
    size_t i = 0;
    uint64_t k8;
    unsigned char rot[8];
    for (int j = 0; j < 8; j++) rot[j] = key[(off + (size_t)j) & 3];
    memcpy(&k8, rot, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k8;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++) p[i] ^= rot[i & 7];
}

static size_t frame_header(unsigned char *h, int first_byte, size_t len) {
    h[0] = (unsigned char)first_byte;
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static void set_out(conn *c, int on) {
    struct epoll_event ev;
    if (c->want_out == on) return;
    c->want_out = on;
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_free(conn *c) {
    if (c->sub) {
        if (c->prev_sub) c->prev_sub->next_sub = c->next_sub;
        else subs = c->next_sub;
        if (c->next_sub) c->next_sub->prev_sub = c->prev_sub;
        nsubs--;
        c->sub = 0;
    }
    close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    c->dead = 1;
    c->next_dead = graveyard;
    graveyard = c;
}

/* Write `p[0..n)` after whatever is already queued; queue what the kernel does not take.
 * Returns -1 when the connection was closed. */
static int send_bytes(conn *c, const unsigned char *p, size_t n) {
    ssize_t w = 0;
    if (c->out.len == 0 && n > 0) {
        w = write(c->fd, p, n);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                conn_free(c);
                return -1;
            }
            w = 0;
        }
    }
    if ((size_t)w < n) {
        buf_put(&c->out, p + w, n - (size_t)w);
        set_out(c, 1);
    }
    return 0;
}

static int flush_out(conn *c) {
    ssize_t w;
    if (c->out.len > c->out.head) {
        w = write(c->fd, c->out.p + c->out.head, c->out.len - c->out.head);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) return 0;
            conn_free(c);
            return -1;
        }
        c->out.head += (size_t)w;
    }
    if (c->out.head == c->out.len) {
        buf_free(&c->out);
        set_out(c, 0);
        if (c->closing) {
            conn_free(c);
            return -1;
        }
    }
    return 0;
}

/* Frame the n messages once, then one write per subscriber for all of them. */
static void publish(long n, size_t size) {
    buf frames = {0};
    unsigned char h[10];
    for (long i = 0; i < n; i++) {
        buf_put(&frames, h, frame_header(h, 0x82, size));
        buf_reserve(&frames, size);
        memset(frames.p + frames.len, (int)(i & 255), size);
        frames.len += size;
    }
    for (conn *s = subs, *next; s; s = next) {
        next = s->next_sub;
        if (!s->closing && !s->dead) send_bytes(s, frames.p, frames.len);
    }
    buf_free(&frames);
}

/* Handle the upgrade request in p[0..n); returns bytes consumed, 0 if incomplete, -1 on error. */
static long handle_http(conn *c, unsigned char *p, size_t n) {
    char head[8192], accept[29], resp[256], *end;
    const char *key;
    size_t klen, hl;
    if (n >= sizeof head) return -1;
    memcpy(head, p, n);
    head[n] = 0;
    end = strstr(head, "\r\n\r\n");
    if (!end) return 0;
    hl = (size_t)(end + 4 - head);
    end[2] = 0;
    key = find_header(head, "Sec-WebSocket-Key", &klen);
    if (strncmp(head, "GET ", 4) != 0 || !key) return -1;
    if (strncmp(head + 4, "/sub", 4) == 0 && (head[8] == ' ' || head[8] == '?')) {
        c->sub = 1;
        c->next_sub = subs;
        if (subs) subs->prev_sub = c;
        subs = c;
        nsubs++;
    }
    c->pub = strncmp(head + 4, "/pub", 4) == 0 && (head[8] == ' ' || head[8] == '?');
    ws_accept(key, klen, accept);
    int m = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    buf_put(&stage, resp, (size_t)m);
    c->ws = 1;
    return (long)hl;
}

/* A whole control frame or /pub text command (kept in c->ctl) has arrived. */
static void handle_kept(conn *c) {
    unsigned char h[10];
    if (c->op == 8) { /* close: answer with the same code, then close the TCP connection */
        size_t m = c->ctl_len >= 2 ? 2 : 0;
        buf_put(&stage, h, frame_header(h, 0x88, m));
        buf_put(&stage, c->ctl, m);
        c->closing = 1;
    } else if (c->op == 9) {
        buf_put(&stage, h, frame_header(h, 0x8A, (size_t)c->ctl_len));
        buf_put(&stage, c->ctl, (size_t)c->ctl_len);
    } else if (c->op == 1) { /* /pub commands */
        char cmd[128];
        long count, size;
        memcpy(cmd, c->ctl, (size_t)c->ctl_len);
        cmd[c->ctl_len] = 0;
        if (strcmp(cmd, "count") == 0) {
            char num[32];
            int k = snprintf(num, sizeof num, "%ld", nsubs);
            buf_put(&stage, h, frame_header(h, 0x81, (size_t)k));
            buf_put(&stage, num, (size_t)k);
        } else if (sscanf(cmd, "go %ld %ld", &count, &size) == 2 && count > 0 && size >= 0 &&
                   size <= (long)MAX_FRAME) {
            publish(count, (size_t)size);
        }
    }
}

/* Parse frames from p[0..n) as they stream: data frames are echoed (same FIN bit and opcode)
 * chunk by chunk, unmasked in place; returns -1 on a protocol error. */
static int handle_frames(conn *c, unsigned char *p, size_t n) {
    unsigned char h[10];
    while (n > 0 && !c->closing) {
        if (!c->in_payload) {
            int need = 2;
            size_t len;
            if (c->hdr_have < 2) {
                c->hdr[c->hdr_have++] = *p++;
                n--;
                continue;
            }
            if (!(c->hdr[1] & 0x80)) return -1; /* clients must mask (RFC 6455 §5.1) */
            len = c->hdr[1] & 0x7f;
            need += (len == 126 ? 2 : len == 127 ? 8 : 0) + 4;
            while (c->hdr_have < need && n > 0) {
                c->hdr[c->hdr_have++] = *p++;
                n--;
            }
            if (c->hdr_have < need) return 0;
            if (len == 126) len = (size_t)c->hdr[2] << 8 | c->hdr[3];
            else if (len == 127)
                for (len = 0, need = 2; need < 10; need++) len = len << 8 | c->hdr[need];
            c->op = c->hdr[0] & 0x0f;
            if (len > MAX_FRAME || ((c->op & 8) && len > 125)) return -1;
            c->keep = (c->op & 8) || (c->pub && c->op == 1 && len < 100);
            if (!c->keep) buf_put(&stage, h, frame_header(h, c->hdr[0] & 0x8f, len));
            c->left = len;
            c->moff = 0;
            c->ctl_len = 0;
            c->in_payload = 1;
        } else {
            size_t m = n < c->left ? n : c->left;
            unmask(p, m, c->hdr + c->hdr_have - 4, c->moff);
            if (c->keep) {
                memcpy(c->ctl + c->ctl_len, p, m);
                c->ctl_len += (int)m;
            } else {
                buf_put(&stage, p, m);
            }
            c->moff += m;
            c->left -= m;
            p += m;
            n -= m;
        }
        if (c->in_payload && c->left == 0) {
            c->in_payload = 0;
            c->hdr_have = 0;
            if (c->keep) handle_kept(c);
        }
    }
    return 0;
}

static void on_readable(conn *c) {
    ssize_t r = read(c->fd, rbuf, sizeof rbuf);
    unsigned char *p = rbuf;
    size_t n;
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_free(c);
        return;
    }
    if (r < 0) return;
    n = (size_t)r;
    stage.len = 0;
    if (!c->ws) { /* the upgrade request, possibly in pieces */
        long used;
        buf_put(&c->in, rbuf, n);
        used = handle_http(c, c->in.p, c->in.len);
        if (used < 0) {
            conn_free(c);
            return;
        }
        if (used == 0) return;
        n = c->in.len - (size_t)used;
        memcpy(rbuf, c->in.p + used, n);
        buf_free(&c->in);
    }
    if (handle_frames(c, p, n) < 0) {
        conn_free(c);
        return;
    }
    if (stage.len && send_bytes(c, stage.p, stage.len) < 0) return;
    if (c->closing && c->out.len == 0) conn_free(c);
}

int main(int argc, char **argv) {
    struct sockaddr_in addr;
    struct epoll_event ev, evs[MAXEV];
    int lfd, one = 1;
    if (argc < 2) {
        fprintf(stderr, "usage: cecho PORT [HOST]\n");
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[1]));
    if (inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &addr.sin_addr) != 1) return 64;
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0) {
        perror("cecho: bind/listen");
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    printf("cecho: listening on %s:%s\n", argc > 2 ? argv[2] : "127.0.0.1", argv[1]);
    fflush(stdout);
    for (;;) {
        int n = epoll_wait(epfd, evs, MAXEV, -1);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c && c->dead) continue;
            if (!c) {
                for (int k = 0; k < 64; k++) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && flush_out(c) < 0) continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
        }
        while (graveyard) {
            conn *c = graveyard;
            graveyard = c->next_dead;
            free(c);
        }
    }
}
