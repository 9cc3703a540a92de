-- The wrk script of bench/bench_api.py (wrk 4, the Debian package: closed loop, no -R).
--
-- BENCH_AUTHORIZATION: the Authorization header of every request (empty: none).
-- BENCH_RATE: requests per second of each wrk thread (0: as fast as the server answers, the peak). With a rate,
--   request k of the thread is due at start + k / rate; before each request wrk waits until the next due time
--   (delay(), whole milliseconds), so the connections send on a fixed schedule while the server keeps up. wrk times
--   a request from its sending, not from its due time: a server that falls behind shows as an achieved rate below
--   the one offered, which the bench prints beside the latencies.
-- At the end one JSON line: requests, seconds, non-2xx/3xx answers, socket errors, p50/p95/p99 in microseconds.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now_ms()
    ffi.C.clock_gettime(MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local authorization = os.getenv("BENCH_AUTHORIZATION") or ""
if authorization ~= "" then
    wrk.headers["Authorization"] = authorization
end
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local interval_ms = rate > 0 and 1000 / rate or 0
local next_due = nil

if interval_ms > 0 then  -- defined only with a rate: wrk then schedules every request through a timer
    function delay()
        local now = now_ms()
        next_due = next_due and next_due + interval_ms or now
        return math.max(0, math.floor(next_due - now))
    end
end

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format(
        '{"requests": %d, "seconds": %.3f, "non_2xx": %d, "socket_errors": %d, ' ..
        '"p50_us": %d, "p95_us": %d, "p99_us": %d}\n',
        summary.requests, summary.duration / 1e6, errors.status,
        errors.connect + errors.read + errors.write + errors.timeout,
        latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
