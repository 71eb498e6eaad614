-- wrk script: POST one JSON body, optionally at a constant rate, and print the figures as one JSON line.
-- Arguments after `--`: <body file> <authorization header or "-"> <requests/s for this thread, 0 = as fast as possible>
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local now_buf = ffi.new("bench_timespec[1]")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, now_buf)
   return tonumber(now_buf[0].tv_sec) * 1000 + tonumber(now_buf[0].tv_nsec) / 1e6
end

local interval_ms = 0
local next_slot = 0

function init(args)
   local f = assert(io.open(args[1], "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   if args[2] ~= "-" then
      wrk.headers["Authorization"] = args[2]
   end
   local rate = tonumber(args[3])
   if rate > 0 then
      interval_ms = 1000 / rate
   end
end

-- Each request takes the next free slot of a fixed schedule, so requests leave at the offered rate whatever
-- the replies do, as long as a connection is free (the harness opens more than the offered load needs).
function delay()
   if interval_ms == 0 then
      return 0
   end
   local now = now_ms()
   if next_slot < now then
      next_slot = now
   end
   local wait = next_slot - now
   next_slot = next_slot + interval_ms
   return wait
end

function done(summary, latency, requests)
   local e = summary.errors
   local out = {
      string.format('"requests":%d', summary.requests),
      string.format('"duration_us":%d', summary.duration),
      string.format('"errors_connect":%d', e.connect),
      string.format('"errors_read":%d', e.read),
      string.format('"errors_write":%d', e.write),
      string.format('"errors_status":%d', e.status),
      string.format('"errors_timeout":%d', e.timeout),
      string.format('"latency_min_us":%d', latency.min),
      string.format('"latency_max_us":%d', latency.max),
      string.format('"latency_mean_us":%.1f', latency.mean),
   }
   for _, p in ipairs({50, 75, 90, 95, 99, 99.9}) do
      out[#out + 1] = string.format('"p%s_us":%d', tostring(p):gsub("%.", "_"), latency:percentile(p))
   end
   io.write("WRK_JSON {" .. table.concat(out, ",") .. "}\n")
end
