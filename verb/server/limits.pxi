# Rate limits, part of the hub: a token bucket per limited connection (allocated only for a
# connection that has a limit) and the per-address table of upgrades and open WebSockets.

# A limited connection's fixed allowance of control frames (pings, pongs): 10 a second, 20 at
# once, so that a ping flood cannot become a pong flood.
cdef double CONTROL_RATE = 10.0
cdef double CONTROL_BURST = 20.0


cdef inline double monotonic() noexcept nogil:
    """Seconds on the monotonic clock (clock_gettime: a vDSO call, no Python object)."""
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return <double>now.tv_sec + <double>now.tv_nsec * 1e-9


cdef class _Bucket:
    """The rate limit of one connection: a bucket of messages, optionally one of payload bytes,
    and the fixed control-frame allowance; for "pause", the message and the input held."""

    def __cinit__(self, limit, double now):
        self.rate = limit.messages / limit.per
        self.capacity = self.tokens = limit.burst
        if limit.bytes is not None:
            self.byte_rate = limit.bytes / limit.per
            self.byte_capacity = self.byte_tokens = limit.burst_bytes
        self.control_tokens = CONTROL_BURST
        self.last = now
        self.action = RATE_LIMIT_ACTIONS.index(limit.action)
        self.limit = limit

    cdef void _refill(self, double now) noexcept:
        cdef double elapsed = now - self.last
        if elapsed <= 0:
            return
        self.last = now
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        if self.byte_rate > 0:
            self.byte_tokens = min(self.byte_capacity, self.byte_tokens + elapsed * self.byte_rate)
        self.control_tokens = min(CONTROL_BURST, self.control_tokens + elapsed * CONTROL_RATE)

    cdef bint admit(self, Py_ssize_t size) noexcept:
        """Take one message of `size` payload bytes if both buckets hold enough. A message
        larger than the byte burst passes only when the byte bucket is full (it then goes into
        debt), so that it is not refused forever."""
        self._refill(monotonic())
        if self.tokens < 1.0:
            return False
        if self.byte_rate > 0 and self.byte_tokens < size and \
                self.byte_tokens < self.byte_capacity:
            return False
        self.tokens -= 1.0
        if self.byte_rate > 0:
            self.byte_tokens -= size
        return True

    cdef bint admit_control(self) noexcept:
        self._refill(monotonic())
        if self.control_tokens < 1.0:
            return False
        self.control_tokens -= 1.0
        return True

    cdef double wait(self, Py_ssize_t size) noexcept:
        """Seconds until a message of `size` bytes would be admitted."""
        cdef double wait = 0.0
        if self.tokens < 1.0:
            wait = (1.0 - self.tokens) / self.rate
        if self.byte_rate > 0 and self.byte_tokens < min(<double>size, self.byte_capacity):
            wait = max(wait, (min(<double>size, self.byte_capacity) - self.byte_tokens)
                       / self.byte_rate)
        return wait

    cdef str describe(self):
        limit = self.limit
        text = "rate limit exceeded: {:g} messages per {:g} s".format(limit.messages, limit.per)
        if limit.bytes is not None:
            text += ", {:g} bytes per {:g} s".format(limit.bytes, limit.per)
        return text


cdef class _Peer:
    """One client address in the hub's table: its open WebSockets and upgrades in progress,
    and its handshake-rate bucket."""

    def __cinit__(self, double tokens, double now):
        self.tokens = tokens
        self.last = now


cdef class PeerTable:
    """Upgrades in progress and open WebSockets per client address, and the handshake rate.

    Bounded: it keeps every address that has an upgrade or a WebSocket open, plus the most
    recently seen idle ones up to `idle_cap`; past that the longest idle go first. An address
    with open connections is never forgotten, so its limit is never lifted.
    """

    def __cinit__(self, object max_per_ip, object handshake_rate, Py_ssize_t idle_cap):
        self.max_per_ip = max_per_ip if max_per_ip is not None else 0
        if handshake_rate is not None:
            self.rate = handshake_rate.per_ip / handshake_rate.per
            self.burst = handshake_rate.burst
        self.idle_cap = idle_cap
        self.peers = {}
        self.idle = 0

    def __len__(self):
        return len(self.peers)

    cdef object admit(self, object address):
        """The address's entry, counted as one more upgrade in progress; or, refused, the
        (status, seconds) to answer with: (429, Retry-After)."""
        cdef double now = monotonic()
        cdef _Peer peer = self.peers.get(address)
        if peer is None:
            self._make_room()
            peer = _Peer(self.burst, now)
            self.peers[address] = peer
            self.idle += 1
        if self.rate > 0:
            peer.tokens = min(self.burst, peer.tokens + (now - peer.last) * self.rate)
            peer.last = now
            if peer.tokens < 1.0:
                return max(1, <int>ceil((1.0 - peer.tokens) / self.rate))
            peer.tokens -= 1.0
        if self.max_per_ip and peer.open >= self.max_per_ip:
            return 1
        if peer.open == 0:
            self.idle -= 1
        peer.open += 1
        return peer

    cdef void release(self, object address, _Peer peer):
        """An upgrade failed or a WebSocket closed: `peer` has one connection less."""
        peer.open -= 1
        if peer.open == 0:
            self.idle += 1
            # Idle entries stay in the order they went idle: the oldest is evicted first.
            if self.peers.pop(address, None) is not None:
                self.peers[address] = peer

    cdef void _make_room(self):
        cdef _Peer peer
        if self.idle < self.idle_cap:
            return
        stale = []
        for address, peer in self.peers.items():
            if peer.open == 0:
                stale.append(address)
                if self.idle - len(stale) < self.idle_cap:
                    break
        for address in stale:
            del self.peers[address]
        self.idle -= len(stale)
