-- After a flush, put back the sends this process made in the last window (cold_start.py).
-- A.sends: [[Redis time µs, member], ...]. Returns how many were missing.
local now = clock()
local added = 0
for _, send in ipairs(A.sends) do
  if send[1] > now - A.window_us then
    added = added + redis.call('ZADD', K.log, 'NX', send[1], send[2])
  end
end
if added > 0 then redis.call('PEXPIRE', K.log, math.ceil(A.window_us / 1000) + 1000) end
return added
