// The Lua scripts behind the Redis state store's atomic operations: each reads and writes
// in one step on the server, so two coordinators, or a coordinator and a canceller, can
// never interleave between a check and its update.

import { createHash } from 'node:crypto';

export interface LuaScript {
  name: string;
  source: string;
  sha: string;
}

function script(name: string, source: string): LuaScript {
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** KEYS: record, index. ARGV: ttlMs, score, id, index cutoff score, field/value pairs... */
export const CREATE_QUERY = script(
  'createQuery',
  `if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
return 1`,
);

/** KEYS: record. ARGV: allowed statuses joined by ',', field/value pairs... Returns HGETALL or nil. */
export const UPDATE_QUERY = script(
  'updateQuery',
  `local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == status then allowed = true end
end
if not allowed then return false end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return redis.call('HGETALL', KEYS[1])`,
);

/** KEYS: record. ARGV: fragmentsDone, fragmentsTotal, bytesScanned deltas. */
export const ADD_PROGRESS = script(
  'addProgress',
  `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'p:fragmentsDone', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'p:fragmentsTotal', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'p:bytesScanned', ARGV[3])
return 1`,
);

/** KEYS: stream. ARGV: message JSON, ttlMs. The TTL restarts on every message. */
export const PUBLISH_COMPLETION = script(
  'publishCompletion',
  `local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return id`,
);

/** KEYS: records by id, ids by hash. ARGV: id, hash, record JSON. 0 when another key has the hash. */
export const PUT_API_KEY = script(
  'putApiKey',
  `local owner = redis.call('HGET', KEYS[2], ARGV[2])
if owner and owner ~= ARGV[1] then return 0 end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local oldHash = cjson.decode(old)['hash']
  if oldHash ~= ARGV[2] and redis.call('HGET', KEYS[2], oldHash) == ARGV[1] then redis.call('HDEL', KEYS[2], oldHash) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1`,
);

/** KEYS: records by id, ids by hash. ARGV: hash. Returns the record JSON or nil. */
export const FIND_API_KEY = script(
  'findApiKeyByHash',
  `local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
return redis.call('HGET', KEYS[1], id)`,
);

/** KEYS: records by id, ids by hash. ARGV: id. */
export const DELETE_API_KEY = script(
  'deleteApiKey',
  `local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local hash = cjson.decode(old)['hash']
if redis.call('HGET', KEYS[2], hash) == ARGV[1] then redis.call('HDEL', KEYS[2], hash) end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1`,
);

/** KEYS: lock. ARGV: token, ttlMs. */
export const RENEW_LOCK = script(
  'renewLock',
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,
);

/** KEYS: lock. ARGV: token. */
export const RELEASE_LOCK = script(
  'releaseLock',
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
);

/** KEYS: value. ARGV: '1' when a current value is expected else '0', expected, next. */
export const COMPARE_AND_SWAP = script(
  'compareAndSwap',
  `local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1`,
);
