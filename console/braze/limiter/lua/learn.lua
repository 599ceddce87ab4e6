-- Keep what an answer's X-RateLimit-* headers say (README "Learned limits", "Being a good
-- neighbour"). A.limit, A.remaining: the headers (-1: absent); A.reset_us: the announced
-- reset (-1: absent); A.at_us: when the request took its slot (0: unknown); A.span_us:
-- Braze's window. Returns {others' requests per window by this answer (-1: unknown), 1 if
-- read as fixed}.
--
-- Braze counts limit - remaining requests in its window; those our log holds for that window
-- are ours, the rest someone else's. A fixed-window server's reset moves on by whole windows
-- and its window began one window before the reset: the others' count so far, once over half
-- the window has passed, is scaled to the whole window. A sliding log's "reset" is when its
-- oldest request leaves, a token bucket's when it is full again: there the last window
-- before the request is the one to compare, and the count is already a whole window's.
-- Until the resets have moved on once, the latter. In-flight requests of ours make single
-- answers a request or two off either way.
-- Per window (its end, e) the best-informed answer counts (the latest in a fixed window). The
-- figure kept ('others', good 'until' the end of the next window) is the previous window's
-- until this one's is as well informed, so it holds through a fixed window's boundary.
local limit = A.limit
if limit > 0 then
  local text = string.format('%d', limit)
  if redis.call('GET', K.learnt) ~= text then redis.call('SET', K.learnt, text) end
end
local remaining, reset, at = A.remaining, A.reset_us, A.at_us
if limit <= 0 or remaining < 0 or at <= 0 then return {-1, 0} end
local span = A.span_us
local state = redis.call('HMGET', K.others, 'reset', 'fixed', 'e', 'cur', 'w', 'prev', 'pw')
local fixed = state[2] == '1'
local last = tonumber(state[1] or '-1')
if reset >= 0 and reset > last then
  if last >= 0 then
    local k = math.floor((reset - last) / span + 0.5)
    fixed = k >= 1 and math.abs(reset - last - k * span) < 1000000
  end
  redis.call('HSET', K.others, 'reset', reset, 'fixed', fixed and '1' or '0')
end
if redis.call('EXISTS', K.grid) == 1 then fixed = true end
local est, weight, epoch
if fixed and reset >= 0 then
  local start = math.min(reset - span, at)
  local raw = math.max(0, limit - remaining - redis.call('ZCOUNT', K.log, start, at))
  weight = (at - start) / span
  est = raw
  -- Rounded down: the count so far ends with a request just seen, so rounding the scaled
  -- figure up takes a request a window from us that nobody uses (the margin covers the rest).
  if weight >= 0.5 then est = math.max(raw, math.floor(raw / weight)) end
  epoch = reset
else
  est = math.max(0, limit - remaining - redis.call('ZCOUNT', K.log, at - span, at))
  weight = 1
  epoch = (math.floor(at / span) + 1) * span
end
local e, cur = tonumber(state[3] or '-1'), tonumber(state[4] or '0')
local w, prev = tonumber(state[5] or '0'), tonumber(state[6] or '0')
local pw = tonumber(state[7] or '0')
if epoch == e then
  if weight >= w then cur, w = est, weight end
elseif epoch > e then
  if epoch - e < 2 * span then prev, pw = cur, w else prev, pw = 0, 0 end
  e, cur, w = epoch, est, weight
end
-- This window's figure once it is as well informed as the last one's was; until then the
-- larger of the two (a surge shows at once).
local others = math.max(cur, prev)
if w >= pw then others = cur end
redis.call('HSET', K.others, 'e', e, 'cur', cur, 'w', w, 'prev', prev, 'pw', pw,
           'others', others, 'until', e + span)
redis.call('PEXPIRE', K.others, A.ttl_ms)
return {est, fixed and 1 or 0}
