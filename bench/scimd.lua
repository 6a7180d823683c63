-- wrk script for the scimd benchmarks (bench/run.sh sets the environment).
--
--   BENCH_SCENARIO  lookup | create | patch-user | group-add | group-remove | group-get |
--                   page | entra-cycle
--   BENCH_TOKEN     bearer token            BENCH_PREFIX  SCIM base path (/scim/v2)
--   BENCH_N         users 1..N exist        BENCH_SPARE   users N+1..N+SPARE (in no group)
--   BENCH_GROUP     group id (group-*)      BENCH_RUN     unique tag for new userNames
--   BENCH_OUT       file the result (one JSON object) is appended to
--
-- Ids are the deterministic ones bench/gen writes, so no list of users is read. Every response
-- outside 2xx counts as an error (reported as "errors"; the benchmark requires 0).

local scenario = os.getenv("BENCH_SCENARIO") or "lookup"
local token = os.getenv("BENCH_TOKEN") or ""
local prefix = os.getenv("BENCH_PREFIX") or "/scim/v2"
local n_users = tonumber(os.getenv("BENCH_N") or "10")
local n_spare = tonumber(os.getenv("BENCH_SPARE") or "1")
local group = os.getenv("BENCH_GROUP") or ""
local run_tag = os.getenv("BENCH_RUN") or tostring(os.time())
local out_file = os.getenv("BENCH_OUT")

local PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
local USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"

local threads = {}
local thread_no = 0

function setup(thread)
   thread_no = thread_no + 1
   thread:set("tid", thread_no)
   table.insert(threads, thread)
end

local headers
errors = 0 -- global: done() reads it from each thread with thread:get
local counter = 0
local my_tid = 0
local queue = {}    -- entra-cycle: follow-up requests decided by lookup responses
local pending_new = {} -- entra-cycle: names looked up that are not expected to exist

function init(args)
   my_tid = tonumber(wrk.thread:get("tid")) or 0
   math.randomseed(os.time() * 1000 + my_tid * 7919)
   headers = {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/scim+json",
      ["Accept"] = "application/scim+json",
   }
end

local function user_id(i)
   return string.format("%08x-0000-4000-8000-%012x", i, i)
end

local function user_name(i)
   return "user" .. i .. "%40bench.example"
end

local function lookup_path(name_escaped)
   return prefix .. "/Users?filter=userName%20eq%20%22" .. name_escaped .. "%22"
end

local function new_user_body(name)
   return '{"schemas":["' .. USER_SCHEMA .. '"],"userName":"' .. name ..
      '","name":{"givenName":"New","familyName":"User"},"active":true,' ..
      '"emails":[{"value":"' .. name .. '","type":"work","primary":true}]}'
end

local function member_patch(op, id)
   return '{"schemas":["' .. PATCH_SCHEMA .. '"],"Operations":[{"op":"' .. op ..
      '","path":"members","value":[{"value":"' .. id .. '"}]}]}'
end

local function spare_id()
   return user_id(n_users + math.random(1, n_spare))
end

local builders = {
   ["lookup"] = function()
      return wrk.format("GET", lookup_path(user_name(math.random(1, n_users))), headers)
   end,
   ["create"] = function()
      counter = counter + 1
      local name = "c" .. run_tag .. "-" .. my_tid .. "-" .. counter .. "@bench.example"
      return wrk.format("POST", prefix .. "/Users", headers, new_user_body(name))
   end,
   ["patch-user"] = function()
      counter = counter + 1
      local body = '{"schemas":["' .. PATCH_SCHEMA .. '"],"Operations":[{"op":"replace",' ..
         '"path":"name.givenName","value":"G' .. run_tag .. "-" .. counter .. '"}]}'
      return wrk.format("PATCH", prefix .. "/Users/" .. user_id(math.random(1, n_users)), headers, body)
   end,
   ["group-add"] = function()
      return wrk.format("PATCH", prefix .. "/Groups/" .. group, headers, member_patch("add", spare_id()))
   end,
   ["group-remove"] = function()
      -- Entra's form: op Remove, path members, value [{value: id}]
      return wrk.format("PATCH", prefix .. "/Groups/" .. group, headers, member_patch("Remove", spare_id()))
   end,
   ["group-get"] = function()
      return wrk.format("GET", prefix .. "/Groups/" .. group .. "?excludedAttributes=members", headers)
   end,
   ["page"] = function()
      local last = n_users - 99
      if last < 1 then last = 1 end
      return wrk.format("GET", prefix .. "/Users?startIndex=" .. math.random(1, last) .. "&count=100", headers)
   end,
   ["entra-cycle"] = function()
      -- Entra: GET ?filter=userName eq "x"; then PATCH the user found, or POST a new one.
      local nxt = table.remove(queue, 1)
      if nxt then return nxt end
      if math.random(1, 10) == 1 then
         counter = counter + 1
         local name = "e" .. run_tag .. "-" .. my_tid .. "-" .. counter .. "@bench.example"
         table.insert(pending_new, name)
         return wrk.format("GET", lookup_path((name:gsub("@", "%%40"))), headers)
      end
      return wrk.format("GET", lookup_path(user_name(math.random(1, n_users))), headers)
   end,
}

local build = builders[scenario] or builders["lookup"]

function request()
   return build()
end

function response(status, hdrs, body)
   if status < 200 or status > 299 then
      errors = errors + 1
   end
   if scenario == "entra-cycle" and body and body:find("ListResponse", 1, true) then
      local total = tonumber(body:match('"totalResults":%s*(%d+)') or "0")
      if total > 0 then
         local id = body:match('"id":%s*"([^"]+)"')
         counter = counter + 1
         local patch = '{"schemas":["' .. PATCH_SCHEMA .. '"],"Operations":[' ..
            '{"op":"Replace","path":"displayName","value":"Entra ' .. counter .. '"},' ..
            '{"op":"Replace","path":"name.givenName","value":"E' .. counter .. '"}]}'
         table.insert(queue, wrk.format("PATCH", prefix .. "/Users/" .. id, headers, patch))
      else
         local name = table.remove(pending_new, 1)
         if name then
            table.insert(queue, wrk.format("POST", prefix .. "/Users", headers, new_user_body(name)))
         end
      end
   end
end

function done(summary, latency, requests)
   local errs = 0
   for _, t in ipairs(threads) do
      errs = errs + (tonumber(t:get("errors")) or 0)
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   local line = string.format(
      '{"scenario":"%s","requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"errors":%d,' ..
      '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"wrk_status_errors":%d}',
      scenario, summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, errs,
      e.connect, e.read, e.write, e.timeout, e.status)
   print(line)
   if out_file then
      local f = io.open(out_file, "a")
      if f then
         f:write(line, "\n")
         f:close()
      end
   end
end
