-- Returns {sends in the window, blocked until (µs), now, learnt limit (0: none), others}.
local now = clock()
redis.call('ZREMRANGEBYSCORE', K.log, '-inf', now - A.window_us)
local o = redis.call('HMGET', K.others, 'others', 'until')
local others = 0
if o[1] and now < tonumber(o[2]) then others = tonumber(o[1]) end
return {redis.call('ZCARD', K.log), tonumber(redis.call('GET', K.blocked) or '0'), now,
        tonumber(redis.call('GET', K.learnt) or '0'), others}
