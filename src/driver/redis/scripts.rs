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

/// Lua helpers about a consumer group: `last_delivered(stream, group)`, the
/// id of the last entry the group handed out (`0-0` without a group: then
/// nothing was handed out), and `after(a, b)`, whether stream id `a` comes
/// after `b`. Entries after `last_delivered` are the ready ones: every
/// entry handed out is either pending or, once settled, deleted.
const GROUP_HELPERS: &str = r"
local function last_delivered(stream, group)
  local last = '0-0'
  local groups = redis.pcall('XINFO', 'GROUPS', stream)
  if type(groups) == 'table' and groups.err == nil then
    for _, g in ipairs(groups) do
      local name, id
      for j = 1, #g, 2 do
        if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then id = g[j + 1] end
      end
      if name == group then last = id end
    end
  end
  return last
end
local function after(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
";

/// Settles a batch of deliveries atomically. KEYS: stream, delay set, dead
/// stream. ARGV: group, then records: `a id` (ack), `r id due member`
/// (retry later), `d id n fields…` (dead letter), `b id n fields…` (hand
/// back: a fresh copy at the end of the stream). Each record acts only if
/// its `XACK` took the entry from the pending list, so an entry another
/// consumer settled first is not copied twice; every entry is then deleted,
/// as a stream is never trimmed. Returns how many were acknowledged here.
pub(crate) static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stream, delayed, dead, group = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local i, done, acks = 2, 0, {}
while i <= #ARGV do
  local kind, id = ARGV[i], ARGV[i + 1]
  if kind == 'a' then
    -- Plain acks need no answer per entry: one XACK and one XDEL for all.
    acks[#acks + 1] = id
    i = i + 2
    if #acks == 1000 then
      done = done + redis.call('XACK', stream, group, unpack(acks))
      redis.call('XDEL', stream, unpack(acks))
      acks = {}
    end
  else
  local acked = redis.call('XACK', stream, group, id)
  done = done + acked
  if kind == 'r' then
    if acked == 1 then redis.call('ZADD', delayed, ARGV[i + 2], ARGV[i + 3]) end
    i = i + 4
  else
    local n = tonumber(ARGV[i + 2])
    if acked == 1 then
      local target = stream
      if kind == 'd' then target = dead end
      redis.call('XADD', target, '*', unpack(ARGV, i + 3, i + 2 + n))
    end
    i = i + 3 + n
  end
  redis.call('XDEL', stream, id)
  end
end
if #acks > 0 then
  done = done + redis.call('XACK', stream, group, unpack(acks))
  redis.call('XDEL', stream, unpack(acks))
end
return done
",
    )
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

/// Deletes a consumer of the group if it holds nothing. KEYS: stream.
/// ARGV: group, consumer. Returns 1 when it was deleted.
pub(crate) static DROP_CONSUMER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if type(p) == 'table' and p.err == nil and #p == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// Publishes to a topic: adds one entry to the stream of every group in
/// the topic's group set. KEYS: group set. ARGV: the entry's fields.
/// Returns how many groups got it.
pub(crate) static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local groups = redis.call('SMEMBERS', KEYS[1])
for _, stream in ipairs(groups) do
  redis.call('XADD', stream, '*', unpack(ARGV))
end
return #groups
",
    )
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
