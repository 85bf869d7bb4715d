-- Apply a shift's newest state to the per-slot capacity of its professional.
-- KEYS[1] shifts hash (shift id -> applied state JSON)
-- KEYS[2] alloc hash (slot -> {"c": {professional: capacity}, "u": {professional: {unit: booking}}})
-- KEYS[3] capacity hash (slot -> total capacity)
-- KEYS[4] remaining hash (slot -> capacity - used)
-- KEYS[5] professionals hash (professional id -> JSON)
-- KEYS[6] the event hash (its counters exist only where it does)
-- ARGV[1] shift id, ARGV[2] sequence,
-- ARGV[3] state JSON {"professional_id", "capacity", "active": bool, "slots": [slot, ...]},
-- ARGV[4] professional JSON, ARGV[5] the changes channel, ARGV[6] the event id (slots.lua's announce)
-- Returns 1 when applied, 0 when ignored as older or duplicate, -1 when the event has no counters
-- here (lost with Redis's data, or its event not applied yet): applied alone, the shift would make
-- a partial event, so the owner builds the event whole from its record instead.
-- A slot left with no capacity and no use loses its fields (save_slot, in slots.lua).
if redis.call('EXISTS', KEYS[6]) == 0 then return -1 end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  old = cjson.decode(old)
  if tonumber(old.sequence) >= tonumber(ARGV[2]) then return 0 end
end
local new = cjson.decode(ARGV[3])
new.sequence = tonumber(ARGV[2])

local function contribute(state, sign)
  if not state.active then return end
  local pro = state.professional_id
  for _, slot in ipairs(state.slots) do
    local raw = redis.call('HGET', KEYS[2], slot)
    local alloc = raw and cjson.decode(raw) or {c = {}, u = {}}
    local capacity = (alloc.c[pro] or 0) + sign * state.capacity
    if capacity > 0 then alloc.c[pro] = capacity else alloc.c[pro] = nil end
    save_slot(KEYS[2], KEYS[3], KEYS[4], slot, alloc)
  end
end

if old then contribute(old, -1) end
contribute(new, 1)
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(new))
redis.call('HSET', KEYS[5], new.professional_id, ARGV[4])
return 1
