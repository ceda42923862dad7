// PuffinError codes as PostgreSQL SQLSTATE codes, for ErrorResponse.

import type { ErrorCode, PuffinError } from '../errors.ts';

const SQLSTATE: Record<ErrorCode, string> = {
  bad_request: '42000',       // syntax_error_or_access_rule_violation
  syntax_error: '42601',      // syntax_error
  binder_error: '42703',      // undefined_column (and other binder errors)
  unknown_table: '42P01',     // undefined_table
  unsupported: '0A000',       // feature_not_supported
  access_denied: '42501',     // insufficient_privilege
  not_found: '42704',         // undefined_object
  conflict: '55000',          // object_not_in_prerequisite_state
  unauthorized: '28P01',      // invalid_password
  forbidden: '42501',         // insufficient_privilege
  payload_too_large: '54000', // program_limit_exceeded
  rate_limited: '53400',      // configuration_limit_exceeded
  timeout: '57014',           // query_canceled (statement timeout)
  fragment_failed: '58000',   // system_error
  bad_gateway: '58030',       // io_error: a query generator failed
  unavailable: '57P03',       // cannot_connect_now
  internal: 'XX000',          // internal_error
};

export const QUERY_CANCELED = '57014';
export const PROTOCOL_VIOLATION = '08P01';
export const INVALID_PASSWORD = '28P01';
export const TOO_MANY_CONNECTIONS = '53300';

export function sqlstateOf(err: PuffinError): string {
  const given = err.details?.sqlstate;
  if (typeof given === 'string' && /^[0-9A-Z]{5}$/.test(given)) return given;
  if (err.code === 'binder_error' && /Catalog Error: Table/i.test(err.message)) return '42P01';
  if (err.code === 'binder_error' && /function/i.test(err.message)) return '42883';
  return SQLSTATE[err.code] ?? 'XX000';
}
