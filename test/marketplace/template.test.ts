// The listing's template against the CloudFormation resource specification (@aws-cdk/cfnspec)
// and against AWS Marketplace's rules for AMI-with-CloudFormation products.

import { specification } from '@aws-cdk/cfnspec';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { UNSCOPED } from '../../marketplace/instance-policy.ts';
import { marketplaceTemplate, templateJson, templateYaml, userDataScript } from '../../marketplace/template.ts';

const template = marketplaceTemplate();
interface SpecProperty { Type?: string; ItemType?: string; Required?: boolean }
interface SpecType { Properties?: Record<string, SpecProperty>; Attributes?: Record<string, unknown> }
const spec = specification() as unknown as { ResourceTypes: Record<string, SpecType>; PropertyTypes: Record<string, SpecType> };
const PSEUDO = new Set(['AWS::Region', 'AWS::AccountId', 'AWS::Partition', 'AWS::StackName', 'AWS::StackId', 'AWS::NoValue', 'AWS::URLSuffix']);

/** Every Ref / GetAtt / ${Name} in a value, with its path. */
function references(value: unknown, path: string, out: { name: string; attr?: string; path: string }[], locals: Set<string> = new Set()): void {
  if (Array.isArray(value)) value.forEach((v, i) => references(v, `${path}[${i}]`, out, locals));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'Ref') out.push({ name: String(v), path });
      else if (k === 'Fn::GetAtt') out.push({ name: String((v as string[])[0]), attr: String((v as string[])[1]), path });
      else if (k === 'Fn::Sub') {
        const [text, vars] = typeof v === 'string' ? [v, {}] : (v as [string, Record<string, unknown>]);
        const names = new Set([...locals, ...Object.keys(vars)]);
        for (const m of text.matchAll(/\$\{([^}!][^}]*)\}/g)) {
          const [name, attr] = (m[1] ?? '').split('.');
          if (!names.has(name ?? '')) out.push({ name: name ?? '', attr, path: `${path}.Fn::Sub` });
        }
        references(vars, `${path}.Fn::Sub`, out, locals);
      } else references(v, `${path}.${k}`, out, locals);
    }
  }
}

describe('the template against the CloudFormation specification', () => {
  test('every resource type exists, required properties are present, no property is unknown', () => {
    for (const [id, resource] of Object.entries(template.Resources)) {
      if (resource.Type.startsWith('Custom::')) {
        assert.ok(resource.Properties?.ServiceToken, `${id}: a custom resource needs a ServiceToken`);
        continue;
      }
      const type = spec.ResourceTypes[resource.Type];
      assert.ok(type, `${id}: unknown resource type ${resource.Type}`);
      const props = resource.Properties ?? {};
      for (const name of Object.keys(props)) assert.ok(type.Properties?.[name], `${id}: ${resource.Type} has no property ${name}`);
      for (const [name, p] of Object.entries(type.Properties ?? {})) {
        if (p.Required) assert.ok(name in props, `${id}: ${resource.Type} requires ${name}`);
      }
      checkNested(resource.Type, props, id);
    }
  });

  test('every Ref, GetAtt and Sub names a parameter, resource or pseudo parameter, and GetAtt an attribute', () => {
    const refs: { name: string; attr?: string; path: string }[] = [];
    references(template.Resources, 'Resources', refs);
    references(template.Outputs, 'Outputs', refs);
    assert.ok(refs.length > 30);
    for (const r of refs) {
      if (PSEUDO.has(r.name)) continue;
      const resource = template.Resources[r.name];
      assert.ok(resource || template.Parameters[r.name], `${r.path}: ${r.name} is neither a parameter nor a resource`);
      if (r.attr && resource && !resource.Type.startsWith('Custom::')) {
        assert.ok(spec.ResourceTypes[resource.Type]?.Attributes?.[r.attr], `${r.path}: ${resource.Type} has no attribute ${r.attr}`);
      }
    }
  });

  test('every condition used is declared', () => {
    const used = [...JSON.stringify(template.Resources).matchAll(/"Fn::If":\["(\w+)"/g)].map((m) => m[1] ?? '');
    assert.ok(used.length > 0);
    for (const u of used) assert.ok(u in template.Conditions, u);
    for (const r of Object.values(template.Resources)) if (r.Condition) assert.ok(r.Condition in template.Conditions);
  });

  test('the YAML and JSON forms are the same template', () => {
    assert.deepEqual(parse(templateYaml(template)), JSON.parse(templateJson(template)));
  });
});

function checkNested(resourceType: string, props: Record<string, unknown>, path: string): void {
  const type = spec.ResourceTypes[resourceType];
  for (const [name, value] of Object.entries(props)) {
    const p = type?.Properties?.[name] as { Type?: string; ItemType?: string } | undefined;
    const itemType = p?.Type === 'List' ? p.ItemType : p?.Type;
    if (!itemType || !value || typeof value !== 'object') continue;
    const propType = spec.PropertyTypes[`${resourceType}.${itemType}`];
    if (!propType?.Properties) continue;
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) {
      if (!item || typeof item !== 'object' || Object.keys(item).some((k) => k.startsWith('Fn::') || k === 'Ref')) continue;
      for (const k of Object.keys(item)) assert.ok(propType.Properties[k], `${path}.${name}: ${itemType} has no property ${k}`);
      for (const [k, sp] of Object.entries(propType.Properties)) if (sp.Required) assert.ok(k in item, `${path}.${name}: ${itemType} requires ${k}`);
      checkNestedProperty(resourceType, propType.Properties, item as Record<string, unknown>, `${path}.${name}`);
    }
  }
}

function checkNestedProperty(resourceType: string, properties: Record<string, { Type?: string; ItemType?: string }>, item: Record<string, unknown>, path: string): void {
  for (const [k, v] of Object.entries(item)) {
    const p = properties[k];
    const t = p?.Type === 'List' ? p.ItemType : p?.Type;
    const nested = t ? spec.PropertyTypes[`${resourceType}.${t}`] : undefined;
    if (!nested?.Properties || !v || typeof v !== 'object') continue;
    for (const sub of Array.isArray(v) ? v : [v]) {
      if (!sub || typeof sub !== 'object' || Object.keys(sub).some((x) => x.startsWith('Fn::') || x === 'Ref')) continue;
      for (const x of Object.keys(sub)) assert.ok(nested.Properties[x], `${path}.${k}: ${t} has no property ${x}`);
      checkNestedProperty(resourceType, nested.Properties, sub as Record<string, unknown>, `${path}.${k}`);
    }
  }
}

describe('AWS Marketplace rules for AMI with CloudFormation', () => {
  test('images come only from the AMI parameter', () => {
    const images = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::EC2::Instance');
    assert.equal(images.length, 1);
    for (const [, r] of images) assert.deepEqual(r.Properties?.ImageId, { Ref: 'ImageId' });
    assert.equal(template.Parameters.ImageId?.Type, 'AWS::EC2::Image::Id');
    assert.doesNotMatch(JSON.stringify(template), /ami-[0-9a-f]{8,}/, 'no hard-coded AMI id');
  });

  test('no hard-coded availability zone', () => {
    assert.doesNotMatch(JSON.stringify(template), /\b[a-z]{2}-[a-z]+-\d[a-f]\b/);
    for (const r of Object.values(template.Resources)) {
      const az = r.Properties?.AvailabilityZone;
      if (az !== undefined) assert.match(JSON.stringify(az), /Fn::GetAZs/);
    }
  });

  test('no IAM statement allows `*` on `*`, and every `*` resource is justified', () => {
    const statements = Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::IAM::Role')
      .flatMap((r) => (r.Properties?.Policies as { PolicyDocument: { Statement: { Sid?: string; Action: string | string[]; Resource: unknown }[] } }[]).flatMap((p) => p.PolicyDocument.Statement));
    assert.ok(statements.length > 10);
    for (const s of statements) {
      const actions = [s.Action].flat();
      assert.ok(!actions.includes('*') && !actions.some((a) => a.endsWith(':*')), `${s.Sid}: a whole-service or * action`);
      if (s.Resource === '*' && s.Sid !== 'FollowTheCommand') assert.ok(s.Sid && UNSCOPED[s.Sid], `${s.Sid}: * resource without a reason in UNSCOPED`);
    }
  });

  test('every parameter has a description, and the instance is IMDSv2-only with an encrypted root volume', () => {
    for (const [name, p] of Object.entries(template.Parameters)) assert.ok(p.Description.length > 10, `${name} has no description`);
    const lt = JSON.stringify(template.Resources.InstanceLaunchTemplate);
    assert.match(lt, /"HttpTokens":"required"/);
    assert.match(JSON.stringify(template.Resources.Instance), /"Encrypted":true/);
  });

  test('the state bucket is encrypted, private and TLS-only', () => {
    const b = JSON.stringify(template.Resources.StateBucket);
    assert.match(b, /SSEAlgorithm/);
    assert.match(b, /"RestrictPublicBuckets":true/);
    assert.match(JSON.stringify(template.Resources.StateBucketPolicy), /aws:SecureTransport/);
  });

  test('UserData is a bash script whose values are all single-quoted', () => {
    const script = userDataScript();
    const body = script.split("<<'ENV'\n")[1]?.split('\nENV\n')[0] ?? '';
    assert.ok(body.split('\n').length > 20);
    for (const line of body.split('\n')) assert.match(line, /^[A-Z_a-z0-9]+='[^']*'$/);
  });
});
