//! The redis driver's Lua scripts: each settle, move or count is one atomic step on the server.
//!
//! Atomic because a crash between, say, storing a retry copy and
//! acknowledging the original must leave one of the two, never both or
//! neither. The delay-set members they split are laid out in `wire`.

use std::sync::LazyLock;

use redis::Script;

/// The Lua helper that splits a length-prefixed member into its parts.
const SPLIT: &str = r"
local function split(m)
  local out, pos = {}, 1
  while pos <= #m do
    local colon = string.find(m, ':', pos, true)
    local len = tonumber(string.sub(m, pos, colon - 1))
    out[#out + 1] = string.sub(m, colon + 1, colon + len)
    pos = colon + len + 1
  end
  return out
end
";

/// Lua helpers about consumer groups. `group_info(stream, group)`: the
/// fields of one consumer group (`last-delivered-id`, `pending`, `lag`),
/// `nil` without it. `last_delivered(stream, group)`: the id of the last
/// entry the group handed out (`0-0` without a group: then nothing was
/// handed out); on a queue's stream the entries after it are the ready
/// ones, as every entry handed out is either pending or, once settled,
/// deleted. `less(a, b)` and `after(a, b)` compare stream ids.
/// `ready_count(topic, group)`: the entries of a topic's stream the group
/// was not handed yet (its `lag`, counted when Redis cannot tell it).
/// `trim(topic)`, the retention rule of a topic's stream: it deletes the
/// entries before the first one some group still needs (its oldest pending
/// entry, else the one after its last delivered), so an entry goes only
/// once every group acknowledged it, and never one a group was not handed
/// yet.
const GROUP_HELPERS: &str = r"
local function fields_of(flat)
  local out = {}
  for j = 1, #flat, 2 do out[flat[j]] = flat[j + 1] end
  return out
end
local function group_info(stream, group)
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if type(groups) ~= 'table' or groups.err ~= nil then return nil end
  for _, g in ipairs(groups) do
    local f = fields_of(g)
    if f['name'] == group then return f end
  end
  return nil
end
local function last_delivered(stream, group)
  local f = group_info(stream, group)
  if f == nil then return '0-0' end
  return f['last-delivered-id']
end
local function less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  -- Decimal text without leading zeros: exact at any size, as Lua numbers are not.
  if am ~= bm then
    if #am ~= #bm then return #am < #bm end
    return am < bm
  end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
local function after(a, b)
  return less(b, a)
end
local function next_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  -- Past 15 digits a Lua number may round up: keep `id` itself (it stays).
  if #seq > 15 then return id end
  return ms .. '-' .. string.format('%d', tonumber(seq) + 1)
end
local function ready_count(topic, group)
  local f = group_info(topic, group)
  if f == nil then return 0 end
  if type(f['lag']) == 'number' then return f['lag'] end
  local n, last = 0, f['last-delivered-id']
  while true do
    local entries = redis.call('XRANGE', topic, '(' .. last, '+', 'COUNT', 1000)
    if #entries == 0 then return n end
    n = n + #entries
    last = entries[#entries][1]
  end
end
local function trim(topic)
  local groups = redis.pcall('XINFO', 'GROUPS', topic)
  if type(groups) ~= 'table' or groups.err ~= nil or #groups == 0 then return 0 end
  local min
  for _, g in ipairs(groups) do
    local f = fields_of(g)
    local need = next_id(f['last-delivered-id'])
    if f['pending'] > 0 then
      local first = redis.call('XPENDING', topic, f['name'], '-', '+', 1)
      if #first > 0 then need = first[1][1] end
    end
    if min == nil or less(need, min) then min = need end
  end
  return redis.call('XTRIM', topic, 'MINID', min)
end
";

/// Settles a batch of deliveries atomically. KEYS: stream, delay set, dead
/// stream, and for a subscriber group the topic's shared stream. ARGV:
/// consumer group, then records: `a id` (ack), `r id due member` (retry
/// later), `d id n fields…` (dead letter), `b id n fields…` (hand back: a
/// fresh copy at the end of the queue's own stream); the same in capitals
/// for an entry of the shared stream. Each record acts only if its `XACK`
/// took the entry from the pending list, so an entry another consumer
/// settled first is not copied twice. Entries of the queue's own stream
/// are then deleted, as a stream is never trimmed; the shared stream is
/// trimmed by the retention rule once the others are settled. Returns how
/// many were acknowledged here.
pub(crate) static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{GROUP_HELPERS}
local stream, delayed, dead, topic, group = KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1]
local i, done, acks, shared = 2, 0, {{}}, {{}}
local function flush()
  if #acks > 0 then
    done = done + redis.call('XACK', stream, group, unpack(acks))
    redis.call('XDEL', stream, unpack(acks))
    acks = {{}}
  end
  if #shared > 0 then
    done = done + redis.call('XACK', topic, group, unpack(shared))
    shared = {{}}
  end
end
local touched = false
while i <= #ARGV do
  local kind, id = ARGV[i], ARGV[i + 1]
  if kind == 'a' or kind == 'A' then
    -- Plain acks need no answer per entry: one XACK (and XDEL) for all.
    if kind == 'a' then acks[#acks + 1] = id else shared[#shared + 1] = id; touched = true end
    i = i + 2
    if #acks + #shared >= 1000 then flush() end
  else
  local upper = kind == 'R' or kind == 'D' or kind == 'B'
  local from = stream
  if upper then from = topic; touched = true end
  local acked = redis.call('XACK', from, group, id)
  done = done + acked
  if kind == 'r' or kind == 'R' then
    if acked == 1 then redis.call('ZADD', delayed, ARGV[i + 2], ARGV[i + 3]) end
    i = i + 4
  else
    local n = tonumber(ARGV[i + 2])
    if acked == 1 then
      local target = stream
      if kind == 'd' or kind == 'D' then target = dead end
      redis.call('XADD', target, '*', unpack(ARGV, i + 3, i + 2 + n))
    end
    i = i + 3 + n
  end
  if not upper then redis.call('XDEL', stream, id) end
  end
end
flush()
if touched then trim(topic) end
return done
"
    ))
});

/// Moves due members of the delay set into the stream. KEYS: delay set,
/// stream. ARGV: now (ms), most to move. Returns `{moved, wait}`: `wait` is
/// the ms until the next member is due, -1 when none is left.
pub(crate) static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{SPLIT}
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', unpack(split(m)))
  redis.call('ZREM', KEYS[1], m)
end
local wait = -1
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 2 then wait = math.max(0, tonumber(nxt[2]) - now) end
return {{#due, wait}}
"
    ))
});

/// Counts a queue. KEYS: stream, delay set, dead stream. ARGV: group.
/// Returns `{ready, pending, delayed, dead}`: acknowledged entries are
/// deleted, so the stream holds exactly the pending and the undelivered.
pub(crate) static STATS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local len = redis.call('XLEN', KEYS[1])
local pending = 0
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(p) == 'table' and p.err == nil then pending = p[1] end
return {len - pending, pending, redis.call('ZCARD', KEYS[2]), redis.call('XLEN', KEYS[3])}
",
    )
});

/// Counts a subscriber group: as [`STATS`], over its own stream and the
/// topic's shared stream. KEYS: own stream, delay set, dead stream, shared
/// stream. ARGV: consumer group.
pub(crate) static GROUP_STATS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{GROUP_HELPERS}
local group = ARGV[1]
local len = redis.call('XLEN', KEYS[1])
local pending = 0
local p = redis.pcall('XPENDING', KEYS[1], group)
if type(p) == 'table' and p.err == nil then pending = p[1] end
local ready = len - pending
local f = group_info(KEYS[4], group)
if f ~= nil then
  pending = pending + f['pending']
  ready = ready + ready_count(KEYS[4], group)
end
return {{ready, pending, redis.call('ZCARD', KEYS[2]), redis.call('XLEN', KEYS[3])}}
"
    ))
});

/// Deletes the entries no consumer was handed yet (those after the group's
/// last delivered id; every entry when there is no group). KEYS: stream.
/// ARGV: group. Returns how many.
pub(crate) static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{GROUP_HELPERS}
local last = last_delivered(KEYS[1], ARGV[1])
local n = 0
while true do
  local entries = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1000)
  if #entries == 0 then break end
  local ids = {{}}
  for j, e in ipairs(entries) do ids[j] = e[1] end
  n = n + redis.call('XDEL', KEYS[1], unpack(ids))
  last = ids[#ids]
end
return n
"
    ))
});

/// Purges a subscriber group: deletes the ready entries of its own stream
/// (as [`PURGE`]) and moves the group past every entry of the shared
/// stream (`XGROUP SETID` to the last one, its read counter kept right),
/// then applies the retention rule. KEYS: own stream, shared stream.
/// ARGV: consumer group. Returns how many were dropped.
pub(crate) static GROUP_PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{GROUP_HELPERS}
local own, topic, group = KEYS[1], KEYS[2], ARGV[1]
local last = last_delivered(own, group)
local n = 0
while true do
  local entries = redis.call('XRANGE', own, '(' .. last, '+', 'COUNT', 1000)
  if #entries == 0 then break end
  local ids = {{}}
  for j, e in ipairs(entries) do ids[j] = e[1] end
  n = n + redis.call('XDEL', own, unpack(ids))
  last = ids[#ids]
end
if group_info(topic, group) ~= nil then
  n = n + ready_count(topic, group)
  local info = fields_of(redis.call('XINFO', 'STREAM', topic))
  redis.call('XGROUP', 'SETID', topic, group, '$', 'ENTRIESREAD', info['entries-added'])
  trim(topic)
end
return n
"
    ))
});

/// The first ready entries of a stream, in order (those after the group's
/// last delivered id, and after a cursor). KEYS: stream. ARGV: group, most
/// to return (passed on as text: a Lua number would lose large counts),
/// cursor (an entry id, `0-0` for none). Returns `XRANGE`'s reply.
pub(crate) static PEEK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{GROUP_HELPERS}
local start = last_delivered(KEYS[1], ARGV[1])
if after(ARGV[3], start) then start = ARGV[3] end
return redis.call('XRANGE', KEYS[1], '(' .. start, '+', 'COUNT', ARGV[2])
"
    ))
});

/// The first ready entries of a subscriber group, in the order its
/// listeners read them: the shared stream's, then its own stream's.
/// KEYS: shared stream, own stream. ARGV: consumer group, most to return.
/// Returns `XRANGE` replies, concatenated.
pub(crate) static GROUP_PEEK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{GROUP_HELPERS}
local out, left = {{}}, tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  if left <= 0 then break end
  local start = last_delivered(key, ARGV[1])
  for _, e in ipairs(redis.call('XRANGE', key, '(' .. start, '+', 'COUNT', left)) do
    out[#out + 1] = e
  end
  left = tonumber(ARGV[2]) - #out
end
return out
"
    ))
});

/// Moves dead letters back to their queue, each in one step: the copy is
/// added to the queue's stream and the dead entry deleted together, so a
/// crash leaves it in exactly one of them. KEYS: dead stream, queue stream.
/// ARGV: group, then records `id n fields…` (the copy's fields, made by the
/// bus's redrive rule). A record whose entry is gone (moved by another
/// redrive) or was handed to a listener of the dead stream since it was
/// read is skipped. Returns how many moved.
pub(crate) static REDRIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{GROUP_HELPERS}
local last = last_delivered(KEYS[1], ARGV[1])
local i, moved = 2, 0
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  if after(id, last) and #redis.call('XRANGE', KEYS[1], id, id) == 1 then
    redis.call('XADD', KEYS[2], '*', unpack(ARGV, i + 2, i + 1 + n))
    redis.call('XDEL', KEYS[1], id)
    moved = moved + 1
  end
  i = i + 2 + n
end
return moved
"
    ))
});

/// Deletes a consumer of the group from each stream where it holds
/// nothing. KEYS: the streams. ARGV: group, consumer. Returns from how many
/// it was deleted.
pub(crate) static DROP_CONSUMER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for _, key in ipairs(KEYS) do
  local p = redis.pcall('XPENDING', key, ARGV[1], '-', '+', 1, ARGV[2])
  if type(p) == 'table' and p.err == nil and #p == 0 then
    redis.call('XGROUP', 'DELCONSUMER', key, ARGV[1], ARGV[2])
    n = n + 1
  end
end
return n
",
    )
});

/// Whether a queue name is a subscriber group: its topic's shared stream
/// has a consumer group of that name. KEYS: shared stream. ARGV: group.
/// Returns 1 or 0.
pub(crate) static IS_GROUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{GROUP_HELPERS}
if group_info(KEYS[1], ARGV[1]) ~= nil then return 1 end
return 0
"
    ))
});

/// Lua helper: `entries(stream, ids)`, the entries of `ids` as `XRANGE`
/// gives them, in order; an id whose entry was deleted comes with no
/// fields (the reader then clears it).
const ENTRIES: &str = r"
local function entries(stream, ids)
  local out = {}
  for _, id in ipairs(ids) do
    local e = redis.call('XRANGE', stream, id, id)
    if e[1] then out[#out + 1] = e[1] else out[#out + 1] = {id, {}} end
  end
  return out
end
";

/// A consumer's own pending entries after an id, without raising their
/// delivery counts (`XREADGROUP … 0` would: a reconnect is no delivery).
/// KEYS: stream. ARGV: group, consumer, after (exclusive; `0`: from the
/// start), count. Returns the entries.
pub(crate) static READ_PENDING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{ENTRIES}
local from = ARGV[3] == '0' and '-' or ('(' .. ARGV[3])
local ids = {{}}
for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], from, '+', tonumber(ARGV[4]), ARGV[2])) do
  ids[#ids + 1] = p[1]
end
return entries(KEYS[1], ids)
"
    ))
});

/// Takes over entries idle longer than a time (their consumer is presumed
/// dead) without raising their delivery counts (`XAUTOCLAIM … JUSTID`):
/// only a delivery about to start raises it ([`ARM`]). KEYS: stream. ARGV:
/// group, consumer, min idle (ms), count. Returns the entries.
pub(crate) static TAKE_OVER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{ENTRIES}
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4], 'JUSTID')
return entries(KEYS[1], r[2])
"
    ))
});

/// Counts the start of a suspect: raises its delivery count (`XCLAIM` to
/// the consumer that holds it, idle 0). KEYS: stream. ARGV: group,
/// consumer, entry id. Returns the delivery count before, or -1 when the
/// entry is no longer pending for this consumer.
pub(crate) static ARM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return -1 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3])
return p[1][4]
",
    )
});
