-- End the cold start with the probe's answer (README "Cold start"). A.used: requests Braze
-- counts in its window (-1: unknown); A.reset_us: when Braze releases the oldest of them
-- (-1: unknown). Returns {entries added, now_us}.
--
-- Which of Braze's requests the log already holds: the entries sent since the oldest one
-- Braze still counts (its reset minus a window; without a reset, only the probe's own).
-- The rest were sent by processes that died or by other integrations, at unknown times:
-- they are added as sent now, so they stay a full window. Only if the log holds nothing
-- from that far back is the oldest of them known: it leaves at the reset. With a
-- fixed-window server they all leave at the reset, with a sliding log only the oldest
-- does, and a token bucket is full again at its reset: never fewer than the server counts,
-- whatever its algorithm (one window of over-counting at worst).
local now = clock()
local added = 0
if A.used > 0 then
  local window = A.window_us
  redis.call('ZREMRANGEBYSCORE', K.log, '-inf', now - window)
  local known = 1
  local first = now
  if A.reset_us >= 0 then
    local oldest = A.reset_us - A.server_window_us
    known = redis.call('ZCOUNT', K.log, oldest, '+inf')
    local margin = window - A.server_window_us
    if redis.call('ZCOUNT', K.log, '-inf', oldest + margin) == 0 then
      first = math.min(oldest, now)
    end
  end
  for i = 1, A.used - known do
    local score = now
    if i == 1 then score = first end
    if score > now - window then
      redis.call('ZADD', K.log, score, now .. ':braze:' .. i .. ':' .. A.suffix)
      added = added + 1
    end
  end
  if added > 0 then redis.call('PEXPIRE', K.log, math.ceil(window / 1000) + 1000) end
end
redis.call('SET', K.alive, '1')
redis.call('DEL', K.gather)
if redis.call('GET', K.probe) == A.token then redis.call('DEL', K.probe) end
return {added, now}
