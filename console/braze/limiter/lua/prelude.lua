-- Put before every script by scripts.py. The one argument is a JSON object: ``A`` holds its
-- named fields, and ``K`` names the keys (``A.keys`` lists their names in KEYS order).
local A = cjson.decode(ARGV[1])
local K = {}
for i, name in ipairs(A.keys) do K[name] = KEYS[i] end
-- Redis's clock, so the hosts' clocks do not matter; the model tests pass ``now_us``.
local function clock()
  if A.now_us then return A.now_us end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
