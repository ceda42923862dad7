// The API's request and response shapes, as schema objects (runtime/api/schema.ts): the
// request ones validate what clients send, and all of them are published in
// GET /v1/openapi.json.

import { QUERY_LANGUAGES, SQL_DIALECTS } from '../sql/frontends.ts';
import type { ObjectSchema, Schema } from './schema.ts';

const QUERY_LIMITS = { maxFragments: 100_000, maxTimeoutMs: 3_600_000 } as const;

export const QUERY_REQUEST = {
  type: 'object',
  description: 'A statement to run. Readers may run SELECT statements only (of the DuckDB SQL the statement becomes, for PRQL, Malloy and other dialects).',
  properties: {
    sql: { type: 'string', minLength: 1, description: "One statement: DuckDB SQL, or PRQL with language 'prql', or a Malloy text with language 'malloy' (its last run: runs; tables by name or duckdb.table('name')), or SQL of another dialect with dialect." },
    language: { type: 'string', enum: QUERY_LANGUAGES, description: "What `sql` is written in (default 'sql'); PRQL and Malloy are compiled to DuckDB SQL (Malloy against the schemas of the tables the caller may read) before it is authorized and run." },
    dialect: { type: 'string', minLength: 1, maxLength: 40, description: `The SQL dialect of \`sql\` (default 'duckdb'), translated to DuckDB SQL before it is authorized and run: ${SQL_DIALECTS.join(', ')} (also postgres, mssql, sqlserver, mariadb). A construct that cannot be translated with its meaning is a 400 naming it.` },
    params: { type: 'array', items: { description: 'A string, number, boolean or null.' }, description: "Values of the statement's $1, $2, ... (or ?, in order), DuckDB SQL only: bound as SQL literals by the classifier's lexer before the statement is classified (never inside strings, identifiers or comments). Integers beyond 2^53: pass a string and cast, e.g. CAST($1 AS BIGINT)." },
    fragments: { type: 'integer', minimum: 1, maximum: QUERY_LIMITS.maxFragments, description: 'Upper bound on fragments per split table.' },
    timeoutMs: { type: 'integer', minimum: 1, maximum: QUERY_LIMITS.maxTimeoutMs, description: 'Deadline of the query in ms (default: PUFFINDB_QUERY_TIMEOUT_MS).' },
  },
  required: ['sql'],
} as const satisfies ObjectSchema;

export const EXPLAIN_REQUEST = {
  type: 'object',
  description: 'A SQL statement to plan; with analyze, also run (authorized like POST /v1/query), with actual rows, bytes and time per stage.',
  properties: {
    ...QUERY_REQUEST.properties,
    analyze: { type: 'boolean', description: 'Run the query and report each stage\'s actual figures.' },
  },
  required: ['sql'],
} as const satisfies ObjectSchema;

export const TRANSLATE_REQUEST = {
  type: 'object',
  description: 'A SQL statement to translate between a dialect and DuckDB, without running it.',
  properties: {
    sql: { type: 'string', minLength: 1, description: 'One statement in dialect `from`.' },
    from: { type: 'string', minLength: 1, maxLength: 40, description: `The dialect of \`sql\`: ${SQL_DIALECTS.join(', ')}.` },
    to: { type: 'string', minLength: 1, maxLength: 40, description: "The dialect to translate to (default 'duckdb'); one of from and to is duckdb." },
  },
  required: ['sql', 'from'],
} as const satisfies ObjectSchema;

export const TRANSLATION: ObjectSchema = {
  type: 'object',
  properties: {
    sql: { type: 'string', description: 'The statement in dialect `to`.' },
    from: { type: 'string' },
    to: { type: 'string' },
  },
  required: ['sql', 'from', 'to'],
};

export const PARSE_REQUEST = {
  type: 'object',
  description: "One SELECT statement to parse (nothing runs); with language or dialect, the DuckDB SQL it becomes is parsed.",
  properties: {
    sql: QUERY_REQUEST.properties.sql,
    language: QUERY_REQUEST.properties.language,
    dialect: QUERY_REQUEST.properties.dialect,
  },
  required: ['sql'],
} as const satisfies ObjectSchema;

export const FORMAT_REQUEST = {
  type: 'object',
  description: 'A statement\'s AST as POST /v1/parse answers it, to print back as SQL (nothing runs).',
  properties: {
    ast: { description: "DuckDB's JSON AST of one SELECT statement ({node, named_param_map}), e.g. an edited /v1/parse answer's `ast`." },
    pretty: { type: 'boolean', description: 'Lay the SQL out on several lines (default true); kept only when it parses back to the same AST.' },
  },
  required: ['ast'],
} as const satisfies ObjectSchema;

export const KEY_REQUEST = {
  type: 'object',
  description: 'A new API key. The secret is in the response, once.',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200, description: 'What the key is for.' },
    role: { type: 'string', enum: ['reader', 'writer', 'admin'], description: 'reader: SELECT only; writer: queries that write too; admin: everything.' },
  },
  required: ['name', 'role'],
} as const satisfies ObjectSchema;

export const LIST_QUERIES_PARAMS = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000, description: 'Most recent first; default 100.' },
    status: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
  },
  required: [],
} as const satisfies ObjectSchema;

export const LOGS_PARAMS = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 10_000, description: 'Entries per page; default 100.' },
    cursor: { type: 'string', minLength: 1, maxLength: 64, description: "The previous page's cursor." },
  },
  required: [],
} as const satisfies ObjectSchema;

export const RESULT_PARAMS = {
  type: 'object',
  properties: {
    format: { type: 'string', enum: ['json', 'csv', 'arrow', 'parquet'], description: 'Overrides Accept. json: {columns, rows} (paged with offset and limit); csv: RFC 4180 with a header row; arrow: an Arrow IPC stream, one record batch per chunk; parquet: the whole result as one Parquet file.' },
    offset: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'First row to answer with (json, csv, arrow); default 0.' },
    limit: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'Most rows to answer with (json, csv, arrow); default all.' },
  },
  required: [],
} as const satisfies ObjectSchema;

export const NO_PARAMS = { type: 'object', properties: {}, required: [] } as const satisfies ObjectSchema;

export const ERROR_RESPONSE: ObjectSchema = {
  type: 'object',
  description: 'Every error: a stable code and a message naming the problem.',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string', description: 'bad_request, syntax_error, unauthorized, forbidden, not_found, conflict, rate_limited, unavailable, ...' },
        message: { type: 'string' },
        details: { description: 'Extra facts for some codes (e.g. position of a syntax error).' },
      },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
};

const PROGRESS: ObjectSchema = {
  type: 'object',
  properties: {
    fragmentsDone: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    fragmentsTotal: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    bytesScanned: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
  },
  required: ['fragmentsDone', 'fragmentsTotal', 'bytesScanned'],
};

const TIME: Schema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Milliseconds since the epoch.' };

const COUNT: Schema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };

export const QUERY_STATUS: ObjectSchema = {
  type: 'object',
  properties: {
    queryId: { type: 'string', description: 'ULID.' },
    status: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
    user: { type: 'string', description: 'Id of the API key that submitted the query.' },
    sql: { type: 'string', description: 'The DuckDB SQL that ran.' },
    source: { description: "What the client sent when it was not DuckDB SQL: {language, dialect, text}." },
    remote: { type: 'array', items: { type: 'object', properties: { remote: { type: 'string' }, url: { type: 'string' }, table: { type: 'string' }, sql: { type: 'string' } }, required: ['remote', 'url', 'sql'] }, description: 'What ran on remote instances (SELECT ... THROUGH, remote.table): {remote, url, table?, sql} per query sent.' },
    submittedAt: TIME,
    startedAt: TIME,
    finishedAt: TIME,
    deadline: TIME,
    progress: PROGRESS,
    cacheHit: { type: 'boolean' },
    shape: { type: 'string', description: 'Plan shape.' },
    partitionCache: {
      type: 'object',
      description: "The workers' filtered-partition cache over the query's stages: files served from it, files read, bytes of file not read. Absent when no input could be served from it.",
      properties: { hits: COUNT, misses: COUNT, bytesSaved: COUNT },
      required: ['hits', 'misses', 'bytesSaved'],
    },
    error: { description: '{code, message} when the query failed or was cancelled.' },
    result: { description: "{path}: the result route's path, for results of any size." },
  },
  required: ['queryId', 'status', 'submittedAt', 'deadline', 'progress'],
};

export const QUERY_RESULT: ObjectSchema = {
  type: 'object',
  description: 'Accept: application/json. With text/csv the body is CSV; with application/vnd.apache.arrow.stream an Arrow IPC stream. A result over PUFFINDB_RESULT_INLINE_LIMIT_BYTES is answered with {queryId, shape, cacheHit, stats, rowCount, result} instead (JSON, whatever Accept said), `result` being the path to fetch it from: GET /v1/queries/{id}/result.',
  properties: {
    queryId: { type: 'string' },
    shape: { type: 'string' },
    cacheHit: { type: 'boolean' },
    stats: { description: 'Fragments, retries, bytes scanned and shuffled, timings in ms.' },
    columns: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' } }, required: ['name', 'type'] } },
    rows: { type: 'array', items: { description: 'One object per row, keyed by column name.' } },
    rowCount: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'A large result only: its rows.' },
    result: { type: 'string', description: 'A large result only: the path to fetch it from (GET /v1/queries/{id}/result).' },
  },
  required: ['queryId'],
};

export const RESULT_PAGE: ObjectSchema = {
  type: 'object',
  description: 'format=json (or Accept: application/json). csv is RFC 4180 with a header row; arrow an Arrow IPC stream with one record batch per chunk of rows; parquet the whole result as one Parquet file (offset and limit refused).',
  properties: {
    queryId: { type: 'string' },
    shape: { type: 'string' },
    cacheHit: { type: 'boolean' },
    columns: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' } }, required: ['name', 'type'] } },
    rowCount: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Rows of the whole result.' },
    offset: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    limit: { description: 'The limit asked for, or null.' },
    next: { description: 'The path of the next page, or null when this page reaches the end.' },
    rows: { type: 'array', items: { description: 'One object per row, keyed by column name; big integers and decimals exact.' } },
  },
  required: ['queryId', 'columns', 'rowCount', 'offset', 'rows'],
};

export const TABLE: ObjectSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    kind: { type: 'string', enum: ['parquet', 'csv', 'tsv', 'json', 'ndjson', 'iceberg', 'delta', 'hudi'] },
    columns: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' } }, required: ['name', 'type'] } },
    snapshotId: { type: 'string' },
    fileCount: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    rowCount: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    sizeBytes: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
  },
  required: ['name', 'kind', 'columns', 'snapshotId', 'fileCount', 'rowCount', 'sizeBytes'],
};

export const TABLE_FILES: ObjectSchema = {
  type: 'object',
  description: "A table's data files at its current snapshot.",
  properties: {
    name: { type: 'string' },
    kind: TABLE.properties.kind,
    snapshotId: { type: 'string' },
    files: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          uri: { type: 'string' },
          sizeBytes: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
          rowCount: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
          partitionValues: { description: 'Hive or identity-partition values of the file, by column, where it has them.' },
        },
        required: ['uri', 'sizeBytes', 'rowCount'],
      },
    },
  },
  required: ['name', 'kind', 'snapshotId', 'files'],
};

export const API_KEY: ObjectSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: ['reader', 'writer', 'admin'] },
    createdAt: TIME,
    key: { type: 'string', description: 'The secret: only in the response that created the key.' },
  },
  required: ['id', 'name', 'role', 'createdAt'],
};
