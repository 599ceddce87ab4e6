-- Learn from an answer's X-RateLimit-Reset whether Braze counts fixed windows (grid.py;
-- README "Fixed windows"). A.reset: the announced reset (epoch s); A.span_s: Braze's window;
-- A.sent_us: when the request took its slot; A.opening_us, A.closing_us: the guards after
-- and before a boundary; A.steps: steps needed; A.ttl_ms: grid and observations TTL;
-- A.witness_us: how late in its window a request must have left to witness a fixed window;
-- A.member: unique; A.background: settle it in background work's log too.
-- Returns {1, grid phase µs} while aligned, {0, 0} while learning, {-1, 0} when an answer
-- contradicted the grid.
--
-- A step counts when the reset moves on by exactly one window after a window with two or
-- more answers, one of them to a request sent over a second (the header's resolution) after
-- the window began. A sliding log's reset is its oldest request plus W: it too moves on by
-- exactly W when requests come in short bursts, but then the whole burst left within a
-- second of the reset it announces; a fixed window's reset does not depend on when we send.
--
-- The answer also names the window Braze counted the request in (the one ending at the
-- reset). The grid counts a send within a guard of a boundary in both windows around it;
-- once answered it is settled to the one Braze named. This is kept while learning too, so
-- the burst of sliding-log sends just before the first aligned window does not count twice.
if redis.call('EXISTS', K.gridoff) == 1 then return {0, 0} end
local reset, span, ttl, sent = A.reset, A.span_s, A.ttl_ms, A.sent_us
local opening, closing = A.opening_us, A.closing_us
local ends = reset * 1000000
local begins = ends - span * 1000000
local settled = nil
if sent >= ends - closing and sent < ends + opening then settled = K.settled_earlier
elseif sent >= begins - closing and sent < begins + opening then settled = K.settled_later end
if settled then
  local keep = 2 * span * 1000000 + opening + closing
  redis.call('ZREMRANGEBYSCORE', settled, '-inf', sent - keep)
  local lane = 'i:'
  if A.background then lane = 'b:' end
  redis.call('ZADD', settled, sent, lane .. A.member)
  redis.call('PEXPIRE', settled, math.ceil(keep / 1000) + 1000)
end
local grid = redis.call('GET', K.grid)
if grid then
  -- A request that left well inside a grid window must be counted in that window.
  local start = sent - ((sent - tonumber(grid)) % (span * 1000000))
  if sent >= start + opening and sent < start + span * 1000000 - closing then
    if reset * 1000000 ~= start + span * 1000000 then
      redis.call('DEL', K.grid, K.gridobs)
      return {-1, 0}
    end
    redis.call('PEXPIRE', K.grid, ttl)
  end
  return {1, grid}
end
local seen = redis.call('HMGET', K.gridobs, 'reset', 'answers', 'steps', 'late')
local current = tonumber(seen[1] or '0')
local answers = tonumber(seen[2] or '0')
local steps = tonumber(seen[3] or '0')
local late = tonumber(seen[4] or '0')
local witness = 0
if sent >= (reset - span) * 1000000 + A.witness_us then witness = 1 end
if reset == current then
  answers, late = answers + 1, math.max(late, witness)
elseif reset < current then
  return {0, 0}  -- a late answer from an earlier window
elseif reset == current + span and answers >= 2 and late == 1 then
  steps, current, answers, late = steps + 1, reset, 1, witness
else
  steps, current, answers, late = 0, reset, 1, witness
end
if steps >= A.steps then
  local phase = (reset % span) * 1000000
  redis.call('SET', K.grid, phase, 'PX', ttl)
  redis.call('DEL', K.gridobs)
  return {1, phase}
end
redis.call('HSET', K.gridobs, 'reset', current, 'answers', answers, 'steps', steps, 'late', late)
redis.call('PEXPIRE', K.gridobs, ttl)
return {0, 0}
