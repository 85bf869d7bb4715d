-- Offer a slot's free units to its waitlist, first first: each a hold under the entry's id (the
-- booking a claim makes has that id) that expires with the offer, taken from the professional with
-- room and the fewest bookings that day. Nothing is free in between: while anyone waits, take.lua
-- and move.lua give nobody a unit of the slot.
-- KEYS[1] event hash, KEYS[2] alloc hash, KEYS[3] remaining hash, KEYS[4] load hash,
-- KEYS[5] capacity hash, KEYS[6] holds hash, KEYS[7] hold expiry zset, KEYS[8] waiting hash
-- ARGV[1] slot, ARGV[2] its event day, ARGV[3] random number in [0, 1), ARGV[4] bookings one
-- professional may take per event day (0: no maximum), ARGV[5] when the offers expire (ms),
-- ARGV[6] the changes channel, ARGV[7] the event id (slots.lua's announce)
-- Returns the entries offered a unit now.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local slot, day = ARGV[1], ARGV[2]
local raw = redis.call('HGET', KEYS[8], slot)
if not raw then return {} end
local queue = cjson.decode(raw)
local alloc_raw = redis.call('HGET', KEYS[2], slot)
local alloc = alloc_raw and cjson.decode(alloc_raw) or {c = {}, u = {}}
local made = {}
while #queue > 0 do
  local entry = queue[1]
  if redis.call('HEXISTS', KEYS[6], entry) == 1 then
    table.remove(queue, 1) -- offered already (a rebuild put it back in the queue)
  else
    local pick = least_loaded(alloc, KEYS[4], day, ARGV[3], nil, tonumber(ARGV[4]))
    if pick == nil then break end
    table.remove(queue, 1)
    local unit = lowest_free_unit(alloc, pick)
    alloc.u[pick] = alloc.u[pick] or {}
    alloc.u[pick][tostring(unit)] = entry
    redis.call('HINCRBY', KEYS[4], day .. '|' .. pick, 1)
    redis.call('HSET', KEYS[6], entry, cjson.encode({slot = slot, professional = pick, unit = unit, day = day, offer = true}))
    redis.call('ZADD', KEYS[7], ARGV[5], entry)
    made[#made + 1] = entry
  end
end
if #queue == 0 then redis.call('HDEL', KEYS[8], slot) else redis.call('HSET', KEYS[8], slot, cjson.encode(queue)) end
if #made > 0 then save_slot(KEYS[2], KEYS[5], KEYS[3], slot, alloc) else announce(slot) end
return made
