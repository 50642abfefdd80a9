"""Compiled loops for :mod:`gamo.methods.blocked_kernel`: G's blocked convex product, forward and
backward, over all class blocks in one call each.

Every product here is skinny: a class block of a few thousand members times the 2-16 rows of a
minibatch that belong to that class. BLAS handles such shapes poorly: on this project's 2-core
machine, 7 rows times a block of 2,000 members x 512 features took about 0.4 ms through torch's
MKL, against 0.07 ms for a plain pass summing the block. These loops stream each member row once
and compute all of its class's rows from it, four rows (and two members or features) at a time.
The work is split in two fixed halves (``prange(2)``), so the results do not depend on the
number of threads that run them.

Layouts (float32, C-contiguous): the loops walk the batch grouped by class, and ``rows[r]`` is
the batch row at grouped position r, so inputs and outputs stay in the batch's order (no copies
to and from the grouped order). ``spans`` is (S, 5) int64 rows ``(lo, n, s, m, e)``: the class
block is members ``[lo, lo+n)``, the batch rows of that class are grouped positions ``[s, e)``,
and positions ``[m, e)`` of them are G's own (the backward's) rows. ``p`` and ``q`` are
(rows, N) scratch buffers in the grouped order, whose row r holds values only in its block's
columns.

Imported only when a blocked kernel is built (importing numba takes a few tenths of a second).
Compiled on first use, about 17 s once on a 2-core machine, and cached next to this file (loading
the cache takes about 3 s).
"""
from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit, prange

# numba's fallback thread pool ("workqueue", where neither TBB nor OpenMP is found) aborts the
# process when two threads launch parallel loops at once, as two runs in threads of one process
# would: every launch from this module holds this lock (uncontended it costs nothing measurable)
LOCK = threading.Lock()


def set_threads(n: int) -> None:
    """Run the loops on at most ``n`` threads (the caller's torch thread count; 2 is all they use)."""
    numba.set_num_threads(max(1, min(n, 2, numba.config.NUMBA_NUM_THREADS)))


# One prange loop per compiled function: each stage reads what the other half wrote in the stage
# before, and with two loops in one function numba ran them out of order (on one thread the
# backward read the other half's gradients before they were written; tests/test_blocked_kernel.py)
_OPTS = dict(fastmath=True, nogil=True, cache=True, parallel=True)


_INLINE = dict(fastmath=True, nogil=True, cache=True, inline="always")


@njit(**_INLINE)
def _dot(u, a):   # pragma: no cover - compiled
    """``u . a`` for two vectors of one length."""
    s0 = np.float32(0.0)
    for j in range(u.shape[0]):
        s0 += u[j] * a[j]
    return s0


@njit(**_INLINE)
def _dots4(u, a, b, c, d):   # pragma: no cover - compiled
    """``u . a``, ``u . b``, ``u . c``, ``u . d``: ``u`` read once for four rows."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    for j in range(u.shape[0]):
        x = u[j]
        s0 += a[j] * x
        s1 += b[j] * x
        s2 += c[j] * x
        s3 += d[j] * x
    return s0, s1, s2, s3


@njit(**_INLINE)
def _dots8(u, v, a, b, c, d):   # pragma: no cover - compiled
    """The dot products of ``u`` and of ``v`` with four rows (``u . a, ..., u . d, v . a, ...,
    v . d``): each element of the six vectors read once for eight products."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    t0 = np.float32(0.0)
    t1 = np.float32(0.0)
    t2 = np.float32(0.0)
    t3 = np.float32(0.0)
    for j in range(u.shape[0]):
        x, y = u[j], v[j]
        w0, w1, w2, w3 = a[j], b[j], c[j], d[j]
        s0 += w0 * x
        s1 += w1 * x
        s2 += w2 * x
        s3 += w3 * x
        t0 += w0 * y
        t1 += w1 * y
        t2 += w2 * y
        t3 += w3 * y
    return s0, s1, s2, s3, t0, t1, t2, t3


def forward(ts, rows, spans, w, c, xt, p, xs):
    """Convex weights ``p[r, lo:lo+n] = softmax(ts[rows[r]] @ w[lo:lo+n].T + c[lo:lo+n])`` and
    points ``xs[rows[r]] = p[r, lo:lo+n] @ members[lo:lo+n]`` for every grouped position r of
    every span (``rows`` maps the grouped order to the batch's; ``xt`` is the members
    transposed, (d, N))."""
    with LOCK:
        _logits(ts, rows, spans, w, c, p)
        _softmax(spans, p)
        _points(spans, rows, xt, p, xs)


@njit(**_OPTS)
def _logits(ts, rows, spans, w, c, p):   # pragma: no cover - compiled
    n_spans = spans.shape[0]
    h = ts.shape[1]
    # logits: each half of every block's members, against all of the block's rows
    for part in prange(2):
        for si in range(n_spans):
            lo, n, s, e = spans[si, 0], spans[si, 1], spans[si, 2], spans[si, 4]
            half = (n + 1) // 2
            j0 = lo + part * half
            j1 = min(lo + n, j0 + half)
            for j in range(j0, j1):
                wj = w[j]
                r = s
                while r + 4 <= e:
                    a0, a1, a2, a3 = _dots4(wj, ts[rows[r]], ts[rows[r + 1]], ts[rows[r + 2]], ts[rows[r + 3]])
                    p[r, j], p[r + 1, j], p[r + 2, j], p[r + 3, j] = a0 + c[j], a1 + c[j], a2 + c[j], a3 + c[j]
                    r += 4
                while r < e:
                    p[r, j] = _dot(wj, ts[rows[r]]) + c[j]
                    r += 1
    return n_spans


@njit(**_OPTS)
def _softmax(spans, p):   # pragma: no cover - compiled
    n_spans = spans.shape[0]
    # softmax of each row over its block (rows alternate between the halves)
    for part in prange(2):
        for si in range(n_spans):
            lo, n, s, e = spans[si, 0], spans[si, 1], spans[si, 2], spans[si, 4]
            for r in range(s, e):
                if r % 2 != part:
                    continue
                row = p[r, lo:lo + n]
                mx = row[0]
                for j in range(1, n):
                    mx = max(mx, row[j])
                tot = np.float32(0.0)
                for j in range(n):
                    v = np.exp(row[j] - mx)
                    row[j] = v
                    tot += v
                inv = np.float32(1.0) / tot
                for j in range(n):
                    row[j] *= inv
    return n_spans


@njit(**_OPTS)
def _points(spans, rows, xt, p, xs):   # pragma: no cover - compiled
    n_spans = spans.shape[0]
    d = xt.shape[0]
    # points: each half of the feature dimensions
    for part in prange(2):
        hd = (d + 1) // 2
        k0 = part * hd
        k1 = min(d, k0 + hd)
        for si in range(n_spans):
            lo, n, s, e = spans[si, 0], spans[si, 1], spans[si, 2], spans[si, 4]
            k = k0
            while k + 2 <= k1:        # two features by four rows at a time
                xa, xb = xt[k, lo:lo + n], xt[k + 1, lo:lo + n]
                r = s
                while r + 4 <= e:
                    a0, a1, a2, a3, b0, b1, b2, b3 = _dots8(xa, xb, p[r, lo:lo + n], p[r + 1, lo:lo + n],
                                                            p[r + 2, lo:lo + n], p[r + 3, lo:lo + n])
                    i0, i1, i2, i3 = rows[r], rows[r + 1], rows[r + 2], rows[r + 3]
                    xs[i0, k], xs[i1, k], xs[i2, k], xs[i3, k] = a0, a1, a2, a3
                    xs[i0, k + 1], xs[i1, k + 1], xs[i2, k + 1], xs[i3, k + 1] = b0, b1, b2, b3
                    r += 4
                while r < e:
                    p0 = p[r, lo:lo + n]
                    xs[rows[r], k], xs[rows[r], k + 1] = _dot(xa, p0), _dot(xb, p0)
                    r += 1
                k += 2
            while k < k1:             # an odd feature left over
                xa = xt[k, lo:lo + n]
                for r in range(s, e):
                    xs[rows[r], k] = _dot(xa, p[r, lo:lo + n])
                k += 1
    return n_spans


def dweights_softmax_back(dxs, grows, spans, x, p, q):
    """The gradient with respect to the logits of G's rows, into ``q`` (``dxs[grows[r]]`` is
    the loss's gradient for grouped row r)."""
    with LOCK:
        _dweights(dxs, grows, spans, x, q)
        _softmax_back(spans, p, q)


@njit(**_OPTS)
def _dweights(dxs, grows, spans, x, q):   # pragma: no cover - compiled
    n_spans = spans.shape[0]
    d = x.shape[1]
    # dL/dweights: each member row against the block's live rows
    for part in prange(2):
        for si in range(n_spans):
            lo, n, m, e = spans[si, 0], spans[si, 1], spans[si, 3], spans[si, 4]
            if m == e:
                continue
            half = (n + 1) // 2
            j0 = lo + part * half
            j1 = min(lo + n, j0 + half)
            j = j0
            while j + 2 <= j1:        # two members by four rows at a time
                xa, xb = x[j], x[j + 1]
                r = m
                while r + 4 <= e:
                    a0, a1, a2, a3, b0, b1, b2, b3 = _dots8(xa, xb, dxs[grows[r]], dxs[grows[r + 1]],
                                                            dxs[grows[r + 2]], dxs[grows[r + 3]])
                    q[r, j], q[r + 1, j], q[r + 2, j], q[r + 3, j] = a0, a1, a2, a3
                    q[r, j + 1], q[r + 1, j + 1], q[r + 2, j + 1], q[r + 3, j + 1] = b0, b1, b2, b3
                    r += 4
                while r < e:
                    g0 = dxs[grows[r]]
                    q[r, j], q[r, j + 1] = _dot(xa, g0), _dot(xb, g0)
                    r += 1
                j += 2
            while j < j1:             # an odd member left over
                xa = x[j]
                for r in range(m, e):
                    q[r, j] = _dot(xa, dxs[grows[r]])
                j += 1
    return n_spans


@njit(**_OPTS)
def _softmax_back(spans, p, q):   # pragma: no cover - compiled
    n_spans = spans.shape[0]
    # through the softmax: q <- p * (q - sum(p * q)), row by row
    for part in prange(2):
        for si in range(n_spans):
            lo, n, m, e = spans[si, 0], spans[si, 1], spans[si, 3], spans[si, 4]
            for r in range(m, e):
                if r % 2 != part:
                    continue
                pr, qr = p[r, lo:lo + n], q[r, lo:lo + n]
                tot = np.float32(0.0)
                for j in range(n):
                    tot += pr[j] * qr[j]
                for j in range(n):
                    qr[j] = pr[j] * (qr[j] - tot)
    return n_spans


def igu_grads(blocks, ts, rows, w, q, gw, gc, dts2):
    """The IGUs' gradients into ``gw`` (N, h) and ``gc`` (N,), for when the optimizer steps them.
    ``blocks`` is (K, 4) rows ``(lo, n, m, e)`` for every class block: members ``[lo, lo+n)``, G's
    rows at grouped positions ``[m, e)`` (``m == e`` where G's batch has no row of the class: a
    zero gradient). The gradient with respect to ``ts`` goes to ``dts2`` (2, rows, h), in the
    batch's order, as two partial sums (one per half) to be added; ``q`` holds the gradient with
    respect to the logits (:func:`dweights_softmax_back`)."""
    with LOCK:
        _igu_grads(blocks, ts, rows, w, gc, q, gw, gc, gw, gw, gc, gc, dts2, False,
                   np.float32(0.0), np.float32(0.0), np.float32(0.0), np.float32(0.0), np.float32(0.0))


def igu_grads_adam(blocks, ts, rows, w, c, q, mw, vw, mc, vc, dts2, step_size, inv_bc2_sqrt,
                   beta1, beta2, eps):
    """As :func:`igu_grads`, with Adam's update of every IGU row folded in: each member row's
    gradient is made, used and dropped while the row is in cache, instead of being written out
    and read back by the optimizer. Blocks without G rows get a zero gradient, which Adam still
    steps with. The update is torch's fused Adam (no weight decay, no amsgrad) in float32:
    ``m += (1 - beta1) (g - m)``, ``v = beta2 v + (1 - beta2) g^2``,
    ``p -= step_size m / (sqrt(v) inv_bc2_sqrt + eps)`` with ``step_size = lr / (1 - beta1^t)``
    and ``inv_bc2_sqrt = 1 / sqrt(1 - beta2^t)``. ``w`` and ``c`` are read (for the gradient
    with respect to ``ts``) before they are updated."""
    with LOCK:
        _igu_grads(blocks, ts, rows, w, c, q, w, c, mw, vw, mc, vc, dts2, True,
                   step_size, inv_bc2_sqrt, beta1, beta2, eps)


@njit(**_OPTS)
def _igu_grads(blocks, ts, rows, w, c, q, gw, gc, mw, vw, mc, vc, dts2, adam, step_size, inv_bc2_sqrt,
               beta1, beta2, eps):   # pragma: no cover - compiled
    """:func:`igu_grads` (``adam`` false: the gradients written to ``gw``, ``gc``) and
    :func:`igu_grads_adam` (``adam`` true: kept in a row of scratch and applied at once)."""
    n_blocks = blocks.shape[0]
    h = ts.shape[1]
    one_b1 = np.float32(1.0) - beta1
    one_b2 = np.float32(1.0) - beta2
    for part in prange(2):
        for r in range(dts2.shape[1]):
            for k in range(h):
                dts2[part, r, k] = 0.0
        scratch = np.zeros(h, np.float32)
        for bi in range(n_blocks):
            lo, n, m, e = blocks[bi, 0], blocks[bi, 1], blocks[bi, 2], blocks[bi, 3]
            half = (n + 1) // 2
            j0 = lo + part * half
            j1 = min(lo + n, j0 + half)
            for j in range(j0, j1):
                wj = w[j]
                gj = scratch if adam else gw[j]
                for k in range(h):
                    gj[k] = 0.0
                acc = np.float32(0.0)
                for r in range(m, e):
                    a = q[r, j]
                    acc += a
                    tr, dr = ts[rows[r]], dts2[part, rows[r]]
                    for k in range(h):
                        gj[k] += a * tr[k]
                        dr[k] += a * wj[k]
                if not adam:
                    gc[j] = acc
                    continue
                mj, vj = mw[j], vw[j]
                for k in range(h):
                    g = gj[k]
                    mk = mj[k] + one_b1 * (g - mj[k])
                    vk = vj[k] * beta2 + one_b2 * (g * g)
                    mj[k] = mk
                    vj[k] = vk
                    wj[k] -= step_size * mk / (np.sqrt(vk) * inv_bc2_sqrt + eps)
                mk = mc[j] + one_b1 * (acc - mc[j])
                vk = vc[j] * beta2 + one_b2 * (acc * acc)
                mc[j] = mk
                vc[j] = vk
                c[j] -= step_size * mk / (np.sqrt(vk) * inv_bc2_sqrt + eps)
    return n_blocks
