-- pipeline.lua - wrk script: each write carries PIPELINE_DEPTH (default 16) GET /x requests,
-- the standard wrk pipelining recipe. wrk counts the responses and reports non-2xx ones.
local depth = tonumber(os.getenv("PIPELINE_DEPTH") or "16")

init = function(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/x")
   end
   req = table.concat(r)
end

request = function()
   return req
end
