// Written justifications for security-scanner findings the design accepts on purpose.
// Each is attached to one resource and one check id (checkov/trivy/AWS Config), travels
// into the synthesized JSON as `locals.scanner_justifications`, and is what the rules test
// accepts in place of a fix. A finding without one fails the test.

import { TerraformStack, type TerraformDataSource, type TerraformResource } from 'cdktf';
import { PuffinError } from '../runtime/errors.ts';
import { addressOf } from './expressions.ts';

/** `address -> check id -> reason`, e.g. `aws_s3_bucket.shuffle -> CKV_AWS_21 -> ...`. */
export type Justifications = Record<string, Record<string, string>>;

const registry = new WeakMap<TerraformStack, Justifications>();

/** Record why `element` deliberately does not satisfy scanner check `checkId`. */
export function justify(element: TerraformResource | TerraformDataSource, checkId: string, reason: string): void {
  if (reason.trim().length < 20) throw new PuffinError('bad_request', `justification of ${checkId} must say why, got '${reason}'`);
  const stack = TerraformStack.of(element);
  const all = registry.get(stack) ?? {};
  registry.set(stack, all);
  const address = addressOf(element);
  all[address] = { ...all[address], [checkId]: reason };
}

export function justificationsOf(stack: TerraformStack): Justifications {
  return registry.get(stack) ?? {};
}
