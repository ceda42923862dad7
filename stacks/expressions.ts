// Terraform expressions the typed bindings cannot say: conditionals on inputs, splats over
// counted resources, `one(...)` of an optional resource. Each helper wraps an expression
// written out in Terraform syntax as a token of the type the binding expects.

import { ref, TerraformDataSource, TerraformStack, Token, type IResolvable, type TerraformResource } from 'cdktf';
import type { IConstruct } from 'constructs';

export function tfString(scope: IConstruct, expression: string): string {
  return Token.asString(ref(expression, TerraformStack.of(scope)));
}

export function tfNumber(scope: IConstruct, expression: string): number {
  return Token.asNumber(ref(expression, TerraformStack.of(scope)));
}

export function tfList(scope: IConstruct, expression: string): string[] {
  return Token.asList(ref(expression, TerraformStack.of(scope)));
}

export function tfBool(scope: IConstruct, expression: string): IResolvable {
  return ref(expression, TerraformStack.of(scope));
}

/** The Terraform address of a resource or data source, e.g. `aws_vpc.this`, for expressions over counted resources. */
export function addressOf(element: TerraformResource | TerraformDataSource): string {
  const prefix = element instanceof TerraformDataSource ? 'data.' : '';
  return `${prefix}${element.terraformResourceType}.${element.friendlyUniqueId}`;
}
