-- Take a slot, or say how long to wait (README: the sliding log, being a good neighbour,
-- cold start; the grid's part is grid_wait.lua).
-- Returns {allowed, wait_us, now_us, is_probe, cold (0: no, 1: yes, 2: gathering), episode,
-- limit in effect, requests per window this lane may take}: the episode names this cold
-- start (its gathering, else its probe) so each process puts its sends back once.
local now = clock()
local limit = A.limit
if A.use_learnt then
  local learnt = tonumber(redis.call('GET', K.learnt) or '0')
  if learnt and learnt > 0 then limit = learnt end
end
local bg = A.background
-- Background work: at most its share (cap, its own log), and all of ours within what
-- others leave (room): their count in Braze's window plus a margin stays free.
local cap, room, others = limit, limit, 0
if bg then
  cap = math.max(1, math.floor(limit * A.share + 1e-9))
  local o = redis.call('HMGET', K.others, 'others', 'until')
  if o[1] and now < tonumber(o[2]) then others = tonumber(o[1]) end
  if others > 0 then
    room = math.max(1, limit - others - math.ceil(limit * A.yield_margin - 1e-9))
  end
end
local budget = math.min(cap, room)
local blocked = tonumber(redis.call('GET', K.blocked) or '0')
if blocked > now then return {0, blocked - now, now, 0, 0, '', limit, budget} end

local window = A.window_us
local probing, cold, episode = 0, 0, ''
if redis.call('EXISTS', K.alive) == 0 then
  cold = 1
  local raw = redis.call('GET', K.gather)
  if not raw and A.remembers then
    -- Only a process with sends of its own to put back starts the gathering.
    redis.call('SET', K.gather, now, 'PX', A.gather_ttl_ms)
    raw = redis.call('GET', K.gather)
  end
  if raw then
    episode = raw
    local gathered = tonumber(raw) + A.gather_us
    if now < gathered then return {0, gathered - now, now, 0, 2, episode, limit, budget} end
  end
  local probe_ttl = redis.call('PTTL', K.probe)
  if probe_ttl > 0 then
    episode = redis.call('GET', K.probe)
    return {0, math.min(probe_ttl * 1000, A.probe_poll_us), now, 0, 1, episode, limit, budget}
  end
  probing = 1
end

local function wait_for(key, n_max)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n < n_max then return 0 end
  local entry = redis.call('ZRANGE', key, n - n_max, n - n_max, 'WITHSCORES')
  return tonumber(entry[2]) + window - now
end

local wait = 0
local pace, last_slot = 0, nil
local steady_step, steady_due = 0, 0
-- A grid put back after a flush holds for the probe too: it is taken in the current window
-- when the sends put back leave room there, and its answer adds what dead processes sent.
local grid = false
if A.grid_span_us > 0 then grid = redis.call('GET', K.grid) end
if grid then
  wait = grid_wait(now, tonumber(grid), bg, room, cap, budget)
else
  wait = wait_for(K.log, room)
  if A.burst_share < 1 then
    -- A stream is spread evenly over the window: sends run at most a small burst ahead of a
    -- schedule one window / limit apart. A whole window's burst would be copied by the log
    -- into every later window (README "Steady sending").
    steady_step = math.floor(window / limit)
    local burst = math.max(math.min(limit, A.burst_floor),
                           math.ceil(limit * A.burst_share - 1e-9))
    steady_due = math.max(now, tonumber(redis.call('GET', K.steady) or '0'))
    wait = math.max(wait, steady_due - (burst - 1) * steady_step - now)
  end
  if bg then
    wait = math.max(wait, wait_for(K.bg, cap))
    -- With others seen, background sends are spread over the window rather than sent in
    -- one burst: answers from late in Braze's windows are what show the others' full use.
    -- On a schedule (the last slot plus the pace), so that a sequential sender whose own
    -- work made it late by less than a pace does not lose that time on every send.
    pace = math.floor(A.pace_us / budget)
    local slot = redis.call('GET', K.slot)
    if not slot then slot = redis.call('ZRANGE', K.bg, -1, -1, 'WITHSCORES')[2] end
    if slot then last_slot = tonumber(slot) end
    if others > 0 and pace > 0 and last_slot then
      wait = math.max(wait, last_slot + pace - now)
    end
  end
end
if wait > 0 then return {0, math.ceil(wait), now, 0, cold, episode, limit, budget} end

local ttl = math.ceil(A.keep_us / 1000) + 1000
redis.call('ZADD', K.log, now, A.member)
redis.call('PEXPIRE', K.log, ttl)
if steady_step > 0 then redis.call('SET', K.steady, steady_due + steady_step, 'PX', ttl) end
if bg then
  redis.call('ZADD', K.bg, now, A.member)
  redis.call('PEXPIRE', K.bg, ttl)
  if not grid then
    -- This send's slot: the one due, unless it came a whole pace or more after it (a
    -- pause, or unpaced): then a new schedule starts now, without a catch-up burst.
    local slot = now
    if others > 0 and pace > 0 and last_slot and now - (last_slot + pace) < pace then
      slot = last_slot + pace
    end
    redis.call('SET', K.slot, slot, 'PX', ttl)
  end
end
if probing == 1 then
  redis.call('SET', K.probe, A.member, 'PX', A.probe_ttl_ms)
  if episode == '' then episode = A.member end
end
return {1, 0, now, probing, cold, episode, limit, budget}
