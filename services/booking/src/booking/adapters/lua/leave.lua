-- Take a waitlist entry out of its slot's waitlist (withdrawn); an offer it holds is given back by
-- release.lua, as any hold.
-- KEYS[1] waiting hash; ARGV[1] slot, ARGV[2] the entry
-- Returns 1 when it was waiting there, 0 when not.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local queue, kept, found = cjson.decode(raw), {}, 0
for _, waiting in ipairs(queue) do
  if waiting == ARGV[2] then found = 1 else kept[#kept + 1] = waiting end
end
if #kept == 0 then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(kept)) end
return found
