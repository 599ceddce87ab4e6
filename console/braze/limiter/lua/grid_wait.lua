-- The learnt fixed-window grid's part of acquire.lua (grid.py; README "Fixed windows"):
-- how long a caller waits when Braze counts fixed windows starting at ``phase`` (µs).
-- A send may count in window b when it leaves between its opening guard before b and its
-- closing guard after b + span (clock offset, transit, the header's whole seconds): near a
-- boundary it must fit both.
local function grid_wait(now, phase, bg, room, cap, budget)
  local span = A.grid_span_us
  local opening, closing = A.grid_opening_us, A.grid_closing_us
  local start = now - ((now - phase) % span)
  -- Guard sends Braze has answered for are counted only in the window it named; the log
  -- always holds the last window (plus margin), so only settlements that recent apply.
  local floor = now - A.window_us + 1
  -- Settled background sends carry a 'b:' member: only they leave background work's log.
  local function settled(key, lo, hi, bg_only)
    if not bg_only then return redis.call('ZCOUNT', key, lo, hi) end
    local n = 0
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, lo, hi)) do
      if string.sub(m, 1, 2) == 'b:' then n = n + 1 end
    end
    return n
  end
  local function used(key, b)
    local n = redis.call('ZCOUNT', key, b - closing, b + span + opening - 1)
    local bg_only = key == K.bg
    n = n - settled(K.settled_earlier, math.max(b - closing, floor), b + opening - 1, bg_only)
    n = n - settled(K.settled_later, math.max(b + span - closing, floor),
                    b + span + opening - 1, bg_only)
    return n
  end
  local windows = {start}
  if now < start + opening then windows = {start - span, start} end
  if now >= start + span - closing then windows = {start, start + span} end
  redis.call('ZREMRANGEBYSCORE', K.log, '-inf', now - A.keep_us)
  if bg then redis.call('ZREMRANGEBYSCORE', K.bg, '-inf', now - A.keep_us) end
  local wait = 0
  for _, b in ipairs(windows) do
    if used(K.log, b) >= room or (bg and used(K.bg, b) >= cap) then
      wait = math.max(wait, b + span + opening - now)
    end
  end
  if wait == 0 and bg then
    if now >= start + span - closing then
      -- Counted in both windows, a send here would cost the next one a slot it may never
      -- have used: background work has time to wait for the boundary, people do not.
      wait = start + span + opening - now
    else
      local pace = math.floor(A.grid_pace_us / budget)
      wait = math.max(0, start + opening + used(K.log, start) * pace - now)
    end
  end
  return wait
end
