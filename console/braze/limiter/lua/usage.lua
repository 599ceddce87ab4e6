-- Returns {sends in the window, blocked until (µs), now, learnt limit (0: none), others}.
local now = clock()
local o = redis.call('HMGET', K.others, 'others', 'until')
local others = 0
if o[1] and now < tonumber(o[2]) then others = tonumber(o[1]) end
-- Counted, not trimmed: acquire.lua keeps a little more than a window (its spacing).
local used = redis.call('ZCOUNT', K.log, '(' .. string.format('%d', now - A.window_us), '+inf')
return {used, tonumber(redis.call('GET', K.blocked) or '0'), now,
        tonumber(redis.call('GET', K.learnt) or '0'), others}
