-- Block the group for every process until now + A.duration_us. Returns {blocked_until_us,
-- now_us} (0 when nothing was blocked). With A.only_if_room (Braze said remaining 0) only
-- when our own log still has room. A 429 also drops a learnt grid and keeps it from being
-- learnt again for A.cooldown_ms, unless the 429 is explained otherwise (A.keep_grid).
local now = clock()
if A.only_if_room then
  redis.call('ZREMRANGEBYSCORE', K.log, '-inf', now - A.window_us)
  if redis.call('ZCARD', K.log) >= A.limit then return {0, now} end
elseif not A.keep_grid then
  redis.call('DEL', K.grid, K.gridobs)
  redis.call('SET', K.gridoff, '1', 'PX', A.cooldown_ms)
end
local untilv = now + A.duration_us
local current = tonumber(redis.call('GET', K.blocked) or '0')
if untilv > current then
  redis.call('SET', K.blocked, untilv, 'PX', math.ceil(A.duration_us / 1000) + 1000)
  return {untilv, now}
end
return {current, now}
