/**
 * The Redis store's server-side scripts. Each runs atomically on the primary that owns the topic:
 * every key of a topic shares the hash tag `{<topic>}`, so in Redis Cluster they live in one slot
 * (topic names cannot contain braces).
 *
 * Keys of a topic T:
 *   sl:{T}:m        hash   epoch, head, first, bytes, lastTs, firstTs, replid, history, and with
 *                          --redis-min-replicas N ≥ 1: acked, probe (see "Replicated watermark")
 *   sl:{T}:s        stream entry ID `0-<offset>`, fields e (the stored entry), t (its ts, ms)
 *   sl:{T}:k:<key>  string `<offset>:<ts>:<epoch>[:<fingerprint, hex>]`, expiring after the dedup
 *                   window (keys written before fingerprints have none: they match any message)
 *   sl:{T}:n        shard channel: the batches stored on T, for the gateways that follow it
 *
 * Epochs and failover. `replid` is the replication ID of the primary that last wrote the topic.
 * A primary that was promoted (INFO's master_replid2 is not all zeros) may lack the newest writes
 * of the primary before it, and no one can know which: its first append to a topic written under
 * another replid starts a new epoch, and `history` records the old epoch and the last offset it
 * holds here (`epoch:last,` pairs, the last 8). A position in the old epoch up to that offset is
 * still valid (core/start.ts); one beyond it saw writes this primary lacks, and is told so. So no
 * offset is ever served with two contents in one epoch. A primary restarted from its own
 * persistence (replid2 all zeros) keeps the epoch: with AOF `appendfsync always` it lost nothing.
 *
 * Replicated watermark (min-replicas N ≥ 1). An append is on the primary before WAIT says N
 * replicas have it, and a failover in between takes it back: no reader may see it meanwhile (a
 * dirty read, which a new primary would then report as a loss). `acked` is the highest offset
 * known to be on N replicas (a raise counts only in the epoch its WAIT saw); with N ≥ 1 every reader (READ, and the head a
 * gateway reads with HMGET) MUST take min(head, acked) as the head. It only rises (RAISE, by the
 * appender after WAIT, before it notifies; or by a node that finds a quiet topic above it: PROBE,
 * WAIT N on that same connection, RAISE). Every replica receives the raise after the entries it
 * covers, so on any replica acked ≤ head, and a promoted replica's value is still true. APPEND
 * with N ≥ 1 sets it at the old head when the field is missing; an APPEND with N = 0 removes it:
 * a topic without it is read up to its head (N = 0 promises nothing about replicas).
 */

/** The retention step both APPEND and TRIM run (a Lua fragment; see its first comment). */
const RETAIN = `-- Retention: oldest first, while over the count, over the bytes, or older than the age.
-- Uses the locals stream, head, first, bytes, firstTs, now, maxCount, maxBytes, maxAgeMs; sets
-- first, bytes, firstTs and trimmed.
local trimmed = 0
local len = head - first + 1
local cutoff = now - maxAgeMs
if len > maxCount or bytes > maxBytes or (len > 0 and firstTs < cutoff) then
  local removeTo = first - 1
  local cursor = '0-' .. first
  local done = false
  while not done do
    local batch = redis.call('XRANGE', stream, cursor, '+', 'COUNT', 64)
    if #batch == 0 then break end
    for _, item in ipairs(batch) do
      local offset = tonumber(string.match(item[1], '^0%-(%d+)$'))
      local fields = item[2]
      local e, t
      for j = 1, #fields, 2 do
        if fields[j] == 'e' then e = fields[j + 1] elseif fields[j] == 't' then t = tonumber(fields[j + 1]) end
      end
      if len > maxCount or bytes > maxBytes or t < cutoff then
        removeTo = offset
        bytes = bytes - #e
        len = len - 1
      else
        firstTs = t
        done = true
        break
      end
      cursor = '0-' .. (offset + 1)
    end
  end
  if removeTo >= first then
    redis.call('XTRIM', stream, 'MINID', '0-' .. (removeTo + 1))
    first = removeTo + 1
    trimmed = 1
    if len == 0 then firstTs = 0 end
  end
end

`;

/**
 * APPEND — KEYS: meta, stream, channel, then one key per keyed message. ARGV: now, dedupMs,
 * maxCount, maxBytes, maxAgeMs, newEpoch, placeholder epoch, publish (1: min-replicas 0, SPUBLISH
 * the batch here and drop `acked`; 0: min-replicas ≥ 1, the node notifies after WAIT and RAISE,
 * and `acked` is set to the old head if missing), nodeId, n, then per message: key index into
 * KEYS (0: none), fingerprint (hex; '' for none), entry.
 * Returns {epoch, head, first, history, created, firstTs (0: empty), trimmed, then per message:
 * offset, ts, duplicate (0 stored, 1 duplicate, 2 key reused with another fingerprint), epoch}.
 */
export const APPEND = `
local meta, stream, channel = KEYS[1], KEYS[2], KEYS[3]
local now, dedupMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local maxCount, maxBytes, maxAgeMs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local newEpoch, placeholder, publish, nodeId, n = ARGV[6], ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10])

local repl = redis.call('INFO', 'replication')
local replid = string.match(repl, 'master_replid:(%x+)') or ''
local replid2 = string.match(repl, 'master_replid2:(%x+)') or ''

local m = redis.call('HMGET', meta, 'epoch', 'head', 'first', 'bytes', 'firstTs', 'replid', 'history', 'acked')
local epoch = m[1]
local head = tonumber(m[2] or '0')
local first = tonumber(m[3] or '1')
local bytes = tonumber(m[4] or '0')
local firstTs = tonumber(m[5] or '0')
local history = m[7] or ''
local created = 0
if publish == '1' then
  if m[8] then redis.call('HDEL', meta, 'acked') end
elseif not m[8] then
  -- What is there was written without a watermark: readable as it was. What follows waits.
  redis.call('HSET', meta, 'acked', head)
end
if not epoch then
  -- First write: a reader may have seen the placeholder epoch of unwritten topics at offset 0.
  epoch = newEpoch
  history = placeholder .. ':0,'
  created = 1
elseif m[6] ~= replid and string.find(replid2, '[^0]') then
  history = history .. epoch .. ':' .. head .. ','
  local count = 0
  for _ in string.gmatch(history, ',') do count = count + 1 end
  while count > 8 do
    history = string.sub(history, string.find(history, ',') + 1)
    count = count - 1
  end
  epoch = newEpoch
end

local out = {}
local firstNew = head + 1
local parts = {}
local stored = 0
for i = 1, n do
  local keyIndex = tonumber(ARGV[8 + 3 * i])
  local fp = ARGV[9 + 3 * i]
  local entry = ARGV[10 + 3 * i]
  local hit = false
  if keyIndex > 0 then
    local v = redis.call('GET', KEYS[keyIndex])
    if v then
      local o, t, rest = string.match(v, '^(%d+):(%d+):(.*)$')
      -- Epochs never hold ':'; what follows one is the stored message's fingerprint.
      local e, f = string.match(rest, '^([^:]*):(.*)$')
      if not e then e = rest; f = '' end
      local dup = 1
      if f ~= '' and fp ~= '' and f ~= fp then dup = 2 end
      out[#out + 1] = tonumber(o); out[#out + 1] = tonumber(t); out[#out + 1] = dup; out[#out + 1] = e
      hit = true
    end
  end
  if not hit then
    head = head + 1
    redis.call('XADD', stream, '0-' .. head, 'e', entry, 't', now)
    bytes = bytes + #entry
    if head == first then firstTs = now end
    if keyIndex > 0 then
      local v = head .. ':' .. now .. ':' .. epoch
      if fp ~= '' then v = v .. ':' .. fp end
      redis.call('SET', KEYS[keyIndex], v, 'PX', dedupMs)
    end
    out[#out + 1] = head; out[#out + 1] = now; out[#out + 1] = 0; out[#out + 1] = epoch
    stored = stored + 1
    parts[#parts + 1] = #entry .. '\\n' .. entry
  end
end

${RETAIN}
redis.call('HSET', meta, 'epoch', epoch, 'head', head, 'first', first, 'bytes', bytes, 'lastTs', now,
  'firstTs', firstTs, 'replid', replid, 'history', history)

if publish == '1' and stored > 0 then
  redis.call('SPUBLISH', channel, 'S1\\n' .. epoch .. '\\n' .. nodeId .. '\\n' .. firstNew .. '\\n' .. stored .. '\\n' .. table.concat(parts))
end

local result = { epoch, head, first, history, created, firstTs, trimmed }
for i = 1, #out do result[#result + 1] = out[i] end
return result
`;

/**
 * READ — KEYS: meta, stream. ARGV: from, limit, maxBytes, acked (1: min-replicas ≥ 1, read only
 * up to the replicated watermark when the topic has one). Returns {epoch|false, head, first,
 * history, start, entry...}: head and first as readers may see them.
 */
export const READ = `
local m = redis.call('HMGET', KEYS[1], 'epoch', 'head', 'first', 'history', 'acked')
if not m[1] then return { false } end
local head, first = tonumber(m[2]), tonumber(m[3])
if ARGV[4] == '1' and m[5] then
  head = math.min(head, tonumber(m[5]))
  first = math.min(first, head + 1)
end
local start = math.max(tonumber(ARGV[1]), first)
local limit, maxBytes = tonumber(ARGV[2]), tonumber(ARGV[3])
local result = { m[1], head, first, m[4] or '', start }
if start > head or limit <= 0 then return result end
local batch = redis.call('XRANGE', KEYS[2], '0-' .. start, '0-' .. head, 'COUNT', limit)
local bytes = 0
local expected = start
for _, item in ipairs(batch) do
  -- Offsets are dense; a hole means retention removed it meanwhile: stop there.
  if tonumber(string.match(item[1], '^0%-(%d+)$')) ~= expected then break end
  local fields = item[2]
  local e
  for j = 1, #fields, 2 do if fields[j] == 'e' then e = fields[j + 1] end end
  if #result > 5 and bytes + #e > maxBytes then break end
  bytes = bytes + #e
  result[#result + 1] = e
  expected = expected + 1
end
return result
`;

/**
 * RAISE — KEYS: meta. ARGV: epoch, offset. Raises `acked` to offset if the topic has the field, is
 * still in that epoch (a WAIT in an old epoch confirms nothing of a new one) and is below it.
 * Returns 1 when raised.
 */
export const RAISE = `
local m = redis.call('HMGET', KEYS[1], 'epoch', 'acked')
if m[1] ~= ARGV[1] or not m[2] or tonumber(m[2]) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'acked', ARGV[2])
return 1
`;

/**
 * PROBE — KEYS: meta. For a topic whose head is above `acked`: a write (so that a WAIT on this
 * connection next covers every entry up to the head read here) and {epoch, head}; else {false}
 * and no write.
 */
export const PROBE = `
local m = redis.call('HMGET', KEYS[1], 'epoch', 'head', 'acked')
if not m[1] or not m[3] or tonumber(m[3]) >= tonumber(m[2]) then return { false } end
redis.call('HINCRBY', KEYS[1], 'probe', 1)
return { m[1], tonumber(m[2]) }
`;

/**
 * TRIM — KEYS: meta, stream. ARGV: now, maxCount, maxBytes, maxAgeMs. Applies retention (age, for
 * topics nobody writes) and returns the oldest retained message's ts (0: none left).
 */
export const TRIM = `
local meta, stream = KEYS[1], KEYS[2]
local now, maxCount, maxBytes, maxAgeMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local m = redis.call('HMGET', meta, 'head', 'first', 'bytes', 'firstTs')
if not m[1] then return 0 end
local head, first, bytes, firstTs = tonumber(m[1]), tonumber(m[2]), tonumber(m[3] or '0'), tonumber(m[4] or '0')
${RETAIN}
if trimmed == 1 then redis.call('HSET', meta, 'first', first, 'bytes', bytes, 'firstTs', firstTs) end
return firstTs
`;

/**
 * RATE — a per-client token bucket every gateway shares, as GCRA: KEYS: the bucket (its
 * theoretical arrival time, ms). ARGV: now, rate per second, capacity, n. Passes (0) when the
 * bucket holds min(n, capacity) tokens and takes n (a large batch leaves it in debt), else returns
 * the ms to wait and takes nothing — the local TokenBucket's rule, in one key.
 */
export const RATE = `
local now, rate, capacity, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local interval = 1000 / rate
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local available = (now + capacity * interval - tat) / interval
local want = math.min(n, capacity)
if available + 1e-9 < want then return math.ceil((want - available) * interval) end
tat = tat + n * interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 1000)
return 0
`;

/**
 * Consumer-group ownership (cluster mode): one node runs a group's engine at a time. KEYS[1] is
 * the lock `sl:{topic}:gl:<group>` (the topic's slot). ARGV: node id, ttl ms. Takes the lock when
 * free, renews it when held by this node; returns the holder either way.
 */
export const GROUP_CLAIM = `
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return holder
`;

/**
 * Saves a group's state only while this node holds its lock (a node that lost ownership must not
 * overwrite the new owner's state). KEYS: lock, the topic's group hash. ARGV: node id, group, state.
 * Returns 1 when saved, 0 when the lock is another's or gone.
 */
export const GROUP_SAVE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
`;

/** Lets go of a group's lock if this node holds it. KEYS[1]: lock. ARGV[1]: node id. */
export const GROUP_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/*
 * Held messages (see held.ts). Every key shares the hash tag `{sl-held}`, so in Redis Cluster they
 * live in one slot and each script is atomic across all of them:
 *   sl:{sl-held}:r           hash  id → the record (held.ts encoding; its state and next as below)
 *   sl:{sl-held}:st          hash  id → state (authoritative)
 *   sl:{sl-held}:d           zset  id by next: the due index
 *   sl:{sl-held}:t:<kind>:<topic>  zset  id by at, records not final (listing, count, next due)
 *   sl:{sl-held}:k:<topic>\0<key>  string  the id held with that idempotency key
 *   sl:{sl-held}:n           hash  state → how many records are in it (the held gauge), kept by
 *                                  every script that changes a state; field `$` marks it built
 *
 * The counts hash is built from the state hash by the first script that finds it missing (a store
 * written before it existed, or after a FLUSH): one HVALS of the state hash, once.
 */

/** Lua prelude: builds the counts hash `n` from the state hash `st` if it is missing. */
const COUNTED = `
local function counted(st, n)
  if redis.call('EXISTS', n) == 1 then return end
  local tally = {}
  for _, s in ipairs(redis.call('HVALS', st)) do tally[s] = (tally[s] or 0) + 1 end
  local args = {'$', '1'}
  for s, c in pairs(tally) do
    args[#args + 1] = s
    args[#args + 1] = c
  end
  redis.call('HSET', n, unpack(args))
end
`;

/**
 * Stores a new record unless its key is held. KEYS: r, st, d, t, k, n. ARGV: id, bytes, state, next,
 * at, hasKey. Returns {1} when stored, {0, id, bytes, state, next} for the record already held.
 */
export const HELD_HOLD = `${COUNTED}
counted(KEYS[2], KEYS[6])
if ARGV[6] == '1' then
  local e = redis.call('GET', KEYS[5])
  if e then
    local b = redis.call('HGET', KEYS[1], e)
    if b then return {0, e, b, redis.call('HGET', KEYS[2], e), redis.call('ZSCORE', KEYS[3], e)} end
  end
  redis.call('SET', KEYS[5], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('HINCRBY', KEYS[6], ARGV[3], 1)
return {1}
`;

/**
 * Replaces a record if its state is one of ARGV[7..]. KEYS: r, st, d, t, n. ARGV: id, bytes, state,
 * next, at, final (1: leave the topic's listing). Returns {1}, or {0, bytes, state, next} (nil
 * bytes: no such record).
 */
export const HELD_UPDATE = `${COUNTED}
counted(KEYS[2], KEYS[5])
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then return {0} end
local ok = false
for i = 7, #ARGV do if ARGV[i] == cur then ok = true end end
if not ok then return {0, redis.call('HGET', KEYS[1], ARGV[1]), cur, redis.call('ZSCORE', KEYS[3], ARGV[1])} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if ARGV[6] == '1' then redis.call('ZREM', KEYS[4], ARGV[1]) else redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1]) end
if cur ~= ARGV[3] then
  redis.call('HINCRBY', KEYS[5], cur, -1)
  redis.call('HINCRBY', KEYS[5], ARGV[3], 1)
end
return {1}
`;

/**
 * Takes up to ARGV[2] records due by ARGV[1] (lowest next first), moving each one's next to
 * ARGV[1] + ARGV[3] and a scheduled one to appending: of several nodes, one takes a record per
 * lease. KEYS: r, st, d, n. Returns id, bytes, state, id, bytes, state, ...
 */
export const HELD_CLAIM = `${COUNTED}
counted(KEYS[2], KEYS[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
local leaseEnd = tonumber(ARGV[1]) + tonumber(ARGV[3])
for _, id in ipairs(ids) do
  local s = redis.call('HGET', KEYS[2], id)
  local b = redis.call('HGET', KEYS[1], id)
  if not s or not b then
    redis.call('ZREM', KEYS[3], id)
  else
    if s == 'scheduled' then
      s = 'appending'
      redis.call('HSET', KEYS[2], id, s)
      redis.call('HINCRBY', KEYS[4], 'scheduled', -1)
      redis.call('HINCRBY', KEYS[4], 'appending', 1)
    end
    redis.call('ZADD', KEYS[3], leaseEnd, id)
    out[#out + 1] = id
    out[#out + 1] = b
    out[#out + 1] = s
  end
end
return out
`;

/** Forgets a record. KEYS: r, st, d, t, k, n. ARGV: id. */
export const HELD_REMOVE = `${COUNTED}
counted(KEYS[2], KEYS[6])
local s = redis.call('HGET', KEYS[2], ARGV[1])
if s then redis.call('HINCRBY', KEYS[6], s, -1) end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
return 1
`;

/** The held records by state. KEYS: st, n. Returns [state, n, state, n, …] (and `$`, 1). */
export const HELD_COUNT = `${COUNTED}
counted(KEYS[1], KEYS[2])
return redis.call('HGETALL', KEYS[2])
`;
