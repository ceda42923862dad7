// The listing's architecture diagram, drawn from what deploys: the synthesized Terraform
// module (cdk.tf.json, with cdktf's construct paths, whose second segment is the concern:
// network, storage, state, functions, api, monostore, ...) and the bootstrap template.
// Nodes are the resources a reader cares about (functions, buckets, Redis, endpoints, the
// instance); the rest are counted per concern. Flows are read from the module's references:
// API integrations, lambda:InvokeFunction grants, REDIS_URL, S3 grants through the gateway
// endpoint, and the template's instance, wait condition and teardown. A new concern or
// resource in stacks/ shows up here without touching this file.

import { PuffinError } from '../runtime/errors.ts';
import { SvgWriter } from './svg.ts';
import type { CfnTemplate } from './template.ts';
import { marketplaceExtension, type SynthesizedModule } from './terraform-extension.ts';

type Block = Record<string, unknown>;

/** The synthesized module with the construct metadata `npm run synth` keeps. */
export interface DiagramModule extends SynthesizedModule {
  data?: Record<string, Record<string, Block>>;
}

export interface DiagramNode {
  id: string;
  label: string;
  /** Created only when a count condition holds (drawn with an asterisk). */
  optional: boolean;
}

export interface DiagramConcern {
  name: string;
  title: string;
  nodes: DiagramNode[];
  /** Resources of the concern not drawn as nodes (IAM, log groups, rules, ...). */
  supporting: number;
}

export interface DiagramFlow {
  from: string;
  to: string;
  label: string;
}

export interface ArchitectureModel {
  bootstrap: DiagramConcern;
  concerns: DiagramConcern[];
  flows: DiagramFlow[];
}

export const BOOTSTRAP_CONCERN = 'bootstrap';

/** Module resource types drawn as nodes; `collapse` draws a concern's resources of that type as one node (`members` lists their names). */
const MODULE_NODES: Record<string, { label: string; collapse?: boolean; members?: boolean }> = {
  aws_vpc: { label: 'VPC' },
  aws_subnet: { label: 'Private subnets (one per AZ)', collapse: true },
  aws_vpc_endpoint: { label: 'VPC endpoint' },
  aws_security_group: { label: 'Security groups', collapse: true, members: true },
  aws_apigatewayv2_api: { label: 'API Gateway HTTP API' },
  aws_lambda_function: { label: 'Lambda' },
  aws_elasticache_replication_group: { label: 'ElastiCache Redis' },
  aws_secretsmanager_secret: { label: 'Secret' },
  aws_s3_bucket: { label: 'S3 bucket' },
  aws_kms_key: { label: 'KMS key' },
  aws_instance: { label: 'EC2 instance' },
};

const TEMPLATE_NODES: Record<string, string> = {
  'AWS::EC2::Instance': 'EC2 instance',
  'AWS::S3::Bucket': 'S3 bucket',
  'AWS::SecretsManager::Secret': 'Secret',
  'AWS::CloudFormation::WaitCondition': 'Wait condition',
  'AWS::Lambda::Function': 'Lambda',
  'AWS::EC2::VPC': 'VPC',
};

const CONCERN_TITLES: Record<string, string> = {
  [BOOTSTRAP_CONCERN]: 'Bootstrap stack (CloudFormation)',
  network: 'Network',
  storage: 'Storage (S3)',
  state: 'State (Redis)',
  functions: 'Functions (Lambda)',
  api: 'API',
  monostore: 'Monostore instance',
  encryption: 'Encryption',
};

/** What the instance does with a template resource it references. */
const REF_LABELS: Record<string, string> = { 'AWS::S3::Bucket': 'terraform state', 'AWS::SecretsManager::Secret': 'admin key', 'AWS::EC2::VPC': 'runs in' };

const tfId = (type: string, name: string): string => `tf:${type}.${name}`;
const cfnId = (logicalId: string): string => `cfn:${logicalId}`;

function concernOf(block: Block, address: string): string {
  const path = (block['//'] as { metadata?: { path?: string } } | undefined)?.metadata?.path;
  const concern = path?.split('/')[1];
  if (!concern) throw new PuffinError('internal', `${address} has no construct path: synthesize with \`npm run synth\` (cdktf's Testing.synth drops the metadata the diagram needs)`);
  return concern;
}

/** Every concern of the module, in first-seen order. */
export function moduleConcerns(module: DiagramModule): string[] {
  const seen = new Set<string>();
  for (const [type, byName] of Object.entries(module.resource)) for (const [name, block] of Object.entries(byName)) seen.add(concernOf(block, `${type}.${name}`));
  return [...seen];
}

/** Addresses (`type.name`) a value references through ${...} interpolations. */
function referencedAddresses(value: unknown, prefix: string): string[] {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  return [...new Set([...text.matchAll(new RegExp(`(?<![\\w.])${prefix}\\.(\\w+)`, 'g'))].map((m) => m[1] ?? ''))];
}

/** Logical ids a template value references (Ref, GetAtt, ${Name} in Fn::Sub). */
function templateRefs(value: unknown): Set<string> {
  const text = JSON.stringify(value ?? null);
  const out = new Set<string>();
  for (const m of text.matchAll(/"Ref":"(\w+)"/g)) out.add(m[1] ?? '');
  for (const m of text.matchAll(/"Fn::GetAtt":\["(\w+)"/g)) out.add(m[1] ?? '');
  for (const m of text.matchAll(/\$\{(\w+)(?:\.\w+)?\}/g)) out.add(m[1] ?? '');
  return out;
}

export function architectureModel(module: DiagramModule, template: CfnTemplate): ArchitectureModel {
  const concerns = new Map<string, DiagramConcern>();
  const concern = (name: string): DiagramConcern => {
    let c = concerns.get(name);
    if (!c) concerns.set(name, (c = { name, title: CONCERN_TITLES[name] ?? name, nodes: [], supporting: 0 }));
    return c;
  };
  /** The node id each drawn resource address belongs to (collapsed types share one). */
  const nodeOf = new Map<string, string>();
  for (const [type, byName] of Object.entries(module.resource)) {
    for (const [name, block] of Object.entries(byName)) {
      const c = concern(concernOf(block, `${type}.${name}`));
      const kind = MODULE_NODES[type];
      if (!kind) {
        c.supporting++;
        continue;
      }
      const optional = typeof block.count === 'string' && block.count.includes('?');
      if (kind.collapse) {
        const id = tfId(type, `*.${c.name}`);
        let node = c.nodes.find((n) => n.id === id);
        if (!node) c.nodes.push((node = { id, label: kind.label, optional }));
        else node.optional ||= optional;
        if (kind.members) node.label = `${node.label}${node.label === kind.label ? ': ' : ', '}${name}`;
        nodeOf.set(`${type}.${name}`, id);
      } else {
        const id = tfId(type, name);
        c.nodes.push({ id, label: `${kind.label}: ${name}`, optional });
        nodeOf.set(`${type}.${name}`, id);
      }
    }
  }

  const bootstrap: DiagramConcern = { name: BOOTSTRAP_CONCERN, title: CONCERN_TITLES[BOOTSTRAP_CONCERN] ?? BOOTSTRAP_CONCERN, nodes: [], supporting: 0 };
  for (const [logicalId, r] of Object.entries(template.Resources)) {
    const label = TEMPLATE_NODES[r.Type];
    if (label) bootstrap.nodes.push({ id: cfnId(logicalId), label: `${label}: ${logicalId}`, optional: r.Condition !== undefined });
    else bootstrap.supporting++;
  }

  const flows: DiagramFlow[] = [];
  const flow = (from: string | undefined, to: string | undefined, label: string): void => {
    if (from && to && from !== to && !flows.some((f) => f.from === from && f.to === to)) flows.push({ from, to, label });
  };
  const res = (type: string): Record<string, Block> => module.resource[type] ?? {};
  const functions = res('aws_lambda_function');

  // API -> the function each integration targets.
  for (const integration of Object.values(res('aws_apigatewayv2_integration'))) {
    for (const api of referencedAddresses(integration.api_id, 'aws_apigatewayv2_api')) {
      for (const fn of referencedAddresses(integration.integration_uri, 'aws_lambda_function')) flow(nodeOf.get(`aws_apigatewayv2_api.${api}`), nodeOf.get(`aws_lambda_function.${fn}`), 'invoke');
    }
  }

  // Grants of each function's role: lambda:InvokeFunction on other functions, s3:* on buckets.
  const gateway = Object.entries(res('aws_vpc_endpoint')).find(([, e]) => e.vpc_endpoint_type === 'Gateway' && /s3/.test(String(e.service_name)));
  const gatewayId = gateway ? nodeOf.get(`aws_vpc_endpoint.${gateway[0]}`) : undefined;
  for (const [fnName, fn] of Object.entries(functions)) {
    const fnId = nodeOf.get(`aws_lambda_function.${fnName}`);
    const roles = referencedAddresses(fn.role, 'aws_iam_role');
    const documents = Object.values(res('aws_iam_role_policy'))
      .filter((p) => referencedAddresses(p.role, 'aws_iam_role').some((r) => roles.includes(r)))
      .flatMap((p) => referencedAddresses(p.policy, 'data.aws_iam_policy_document'));
    const statements = documents.flatMap((d) => ((module.data?.aws_iam_policy_document?.[d]?.statement ?? []) as { actions?: string[]; resources?: string[] }[]));
    for (const s of statements) {
      const actions = s.actions ?? [];
      if (actions.includes('lambda:InvokeFunction')) {
        for (const [otherName, other] of Object.entries(functions)) {
          if ((s.resources ?? []).some((r) => r.endsWith(`:function:${String(other.function_name)}`))) flow(fnId, nodeOf.get(`aws_lambda_function.${otherName}`), 'invoke');
        }
      }
      if (actions.some((a) => a.startsWith('s3:'))) {
        for (const bucket of referencedAddresses(s.resources, 'aws_s3_bucket')) {
          const bucketId = nodeOf.get(`aws_s3_bucket.${bucket}`);
          if (gatewayId) {
            flow(fnId, gatewayId, 'S3');
            flow(gatewayId, bucketId, '');
          } else flow(fnId, bucketId, 'S3');
        }
      }
    }
    for (const redis of referencedAddresses(fn.environment, 'aws_elasticache_replication_group')) flow(fnId, nodeOf.get(`aws_elasticache_replication_group.${redis}`), 'state');
  }

  // The bootstrap instance: what its properties reference, the wait condition its handle
  // signals, the teardown that runs on it, and Redis, which the extension opens to it.
  for (const [logicalId, r] of Object.entries(template.Resources)) {
    const from = cfnId(logicalId);
    if (r.Type === 'AWS::EC2::Instance') {
      const refs = templateRefs(r.Properties);
      for (const target of refs) if (bootstrap.nodes.some((n) => n.id === cfnId(target))) flow(from, cfnId(target), REF_LABELS[template.Resources[target]?.Type ?? ''] ?? 'uses');
      for (const [waitId, w] of Object.entries(template.Resources)) {
        if (w.Type === 'AWS::CloudFormation::WaitCondition' && [...templateRefs(w.Properties)].some((h) => refs.has(h))) flow(from, cfnId(waitId), 'signal');
      }
      const extension = marketplaceExtension(module) as { resource: { aws_vpc_security_group_ingress_rule: Record<string, Block> } };
      for (const rule of Object.values(extension.resource.aws_vpc_security_group_ingress_rule)) {
        for (const sg of referencedAddresses(rule.security_group_id, 'aws_security_group')) {
          for (const [redisName, redis] of Object.entries(res('aws_elasticache_replication_group'))) {
            if (referencedAddresses(redis.security_group_ids, 'aws_security_group').includes(sg)) flow(from, nodeOf.get(`aws_elasticache_replication_group.${redisName}`), 'state');
          }
        }
      }
    }
    if (r.Type.startsWith('Custom::')) {
      const handler = templateRefs(r.Properties?.ServiceToken);
      for (const h of handler) for (const target of templateRefs(r.Properties)) {
        if (!handler.has(target) && template.Resources[target]?.Type === 'AWS::EC2::Instance') flow(cfnId(h), cfnId(target), 'terraform destroy');
      }
    }
  }
  return { bootstrap, concerns: [...concerns.values()], flows };
}

// -- layout and drawing

const NODE_W = 320;
const NODE_H = 26;
const NODE_GAP = 6;
const PAD = 10;
const TITLE_H = 22;
const FOOT_H = 18;
const COL_GAP = 50;
const GROUP_GAP = 18;
const MARGIN = 20;
const HEADER_H = 50;
const FRAME_PAD = 16;
const GROUP_W = NODE_W + 2 * PAD;

/** Preferred column of each known concern inside the Terraform frame; others go to the shortest column. */
const COLUMN: Record<string, number> = { api: 0, monostore: 0, encryption: 0, functions: 1, network: 1, state: 2, storage: 2 };
const COLOURS: Record<string, string> = {
  [BOOTSTRAP_CONCERN]: '#fdf2e3',
  network: '#eef3fb',
  storage: '#e9f6ec',
  state: '#fbeaea',
  functions: '#fff7db',
  api: '#f1ebfa',
  monostore: '#eaf6f7',
  encryption: '#f2f2f2',
};

interface Box { x: number; y: number; w: number; h: number }

const groupHeight = (c: DiagramConcern): number => TITLE_H + c.nodes.length * (NODE_H + NODE_GAP) + (c.supporting > 0 ? FOOT_H : 0) + PAD;

export function architectureSvg(model: ArchitectureModel, title: string): string {
  const frameX = MARGIN + GROUP_W + COL_GAP;
  const colX = (i: number): number => frameX + FRAME_PAD + i * (GROUP_W + COL_GAP);
  const top = MARGIN + HEADER_H + FRAME_PAD + 18;
  const heights = [0, 0, 0];
  const groups = new Map<string, Box>();
  for (const c of model.concerns) {
    const preferred = COLUMN[c.name];
    const col = preferred ?? heights.indexOf(Math.min(...heights));
    const h = groupHeight(c);
    groups.set(c.name, { x: colX(col), y: top + (heights[col] ?? 0), w: GROUP_W, h });
    heights[col] = (heights[col] ?? 0) + h + GROUP_GAP;
  }
  const bootstrapBox: Box = { x: MARGIN, y: top, w: GROUP_W, h: groupHeight(model.bootstrap) };
  groups.set(BOOTSTRAP_CONCERN, bootstrapBox);
  const frame: Box = { x: frameX, y: MARGIN + HEADER_H, w: 3 * GROUP_W + 2 * COL_GAP + 2 * FRAME_PAD, h: Math.max(...heights) - GROUP_GAP + FRAME_PAD + 18 + FRAME_PAD };
  const width = frame.x + frame.w + MARGIN;
  const height = Math.max(frame.y + frame.h, bootstrapBox.y + bootstrapBox.h) + MARGIN + 40;

  const nodes = new Map<string, Box>();
  for (const c of [model.bootstrap, ...model.concerns]) {
    const g = groups.get(c.name) as Box;
    c.nodes.forEach((n, i) => nodes.set(n.id, { x: g.x + PAD, y: g.y + TITLE_H + i * (NODE_H + NODE_GAP), w: NODE_W, h: NODE_H }));
  }

  const svg = new SvgWriter(width, height);
  svg.open('defs');
  svg.open('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  svg.element('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#444' });
  svg.close('marker');
  svg.close('defs');
  svg.element('rect', { x: 0, y: 0, width, height, fill: '#ffffff' });
  svg.element('text', { x: MARGIN, y: MARGIN + 16, 'font-size': 18, 'font-weight': 'bold' }, title);
  svg.element('text', { x: MARGIN, y: MARGIN + 36, fill: '#555' }, 'Generated from cdktf.out/stacks/puffindb/cdk.tf.json and the bootstrap template by marketplace/architecture.ts');

  svg.open('g', { id: 'terraform-module' });
  svg.element('rect', { x: frame.x, y: frame.y, width: frame.w, height: frame.h, rx: 8, fill: 'none', stroke: '#888', 'stroke-dasharray': '6 4' });
  svg.element('text', { x: frame.x + FRAME_PAD, y: frame.y + 20, 'font-weight': 'bold', fill: '#555' }, "Terraform module applied by the instance (in the buyer's VPC and account)");
  svg.close('g');

  for (const c of [model.bootstrap, ...model.concerns]) {
    const g = groups.get(c.name) as Box;
    svg.open('g', { id: `concern-${c.name}` });
    svg.element('rect', { x: g.x, y: g.y, width: g.w, height: g.h, rx: 6, fill: COLOURS[c.name] ?? '#f7f7f7', stroke: '#999' });
    svg.element('text', { x: g.x + PAD, y: g.y + 16, 'font-weight': 'bold' }, c.title);
    for (const n of c.nodes) {
      const b = nodes.get(n.id) as Box;
      svg.element('rect', { id: n.id, x: b.x, y: b.y, width: b.w, height: b.h, rx: 4, fill: '#ffffff', stroke: '#666' });
      svg.element('text', { x: b.x + 8, y: b.y + 17, 'font-size': 11 }, `${n.label}${n.optional ? ' *' : ''}`);
    }
    if (c.supporting > 0) svg.element('text', { x: g.x + PAD, y: g.y + g.h - PAD - 2, 'font-size': 10, fill: '#666' }, `+ ${c.supporting} supporting resources (IAM, logs, rules, ...)`);
    svg.close('g');
  }

  svg.open('g', { id: 'flows', fill: 'none', stroke: '#444', 'stroke-width': 1.2 });
  const instance = model.bootstrap.nodes.find((n) => n.id.startsWith('cfn:') && n.label.startsWith(TEMPLATE_NODES['AWS::EC2::Instance'] ?? ''));
  const lines: { x1: number; y1: number; x2: number; y2: number; label: string }[] = [];
  if (instance) {
    const b = nodes.get(instance.id) as Box;
    lines.push({ x1: b.x + b.w, y1: b.y + b.h / 2, x2: frame.x, y2: b.y + b.h / 2, label: 'terraform apply' });
  }
  for (const f of model.flows) {
    const a = nodes.get(f.from);
    const b = nodes.get(f.to);
    if (!a || !b) throw new PuffinError('internal', `flow ${f.from} -> ${f.to} names a node the diagram does not draw`);
    if (Math.abs(a.x - b.x) < 1) {
      const down = b.y > a.y;
      // Same column: along the node's right edge, offset so parallel flows stay apart.
      const x = a.x + a.w - 12 - (lines.length % 4) * 6;
      lines.push({ x1: x, y1: down ? a.y + a.h : a.y, x2: x, y2: down ? b.y : b.y + b.h, label: f.label });
    } else {
      const right = b.x > a.x;
      lines.push({ x1: right ? a.x + a.w : a.x, y1: a.y + a.h / 2, x2: right ? b.x : b.x + b.w, y2: b.y + b.h / 2, label: f.label });
    }
  }
  for (const l of lines) svg.element('line', { x1: l.x1, y1: l.y1, x2: l.x2, y2: l.y2, 'marker-end': 'url(#arrow)' });
  svg.close('g');
  svg.open('g', { id: 'flow-labels', 'font-size': 10, fill: '#222', stroke: '#ffffff', 'stroke-width': 3, 'paint-order': 'stroke' });
  const placed = new Set<string>();
  for (const l of lines) {
    if (!l.label) continue;
    const x = Math.round((l.x1 + l.x2) / 2);
    const y = Math.round((l.y1 + l.y2) / 2) - 3;
    const key = `${x},${y}`;
    if (placed.has(key)) continue;
    placed.add(key);
    svg.element('text', { x, y, 'text-anchor': 'middle' }, l.label);
  }
  svg.close('g');
  svg.element('text', { x: MARGIN, y: height - MARGIN, fill: '#555', 'font-size': 11 }, '* created only when its condition holds (a Terraform count or a CloudFormation condition). Arrows: invocations, state-store and S3 traffic, and the bootstrap steps.');
  return svg.toString();
}

export const ARCHITECTURE_TITLE = 'PuffinDB on AWS Marketplace: architecture';

export function architectureDiagram(module: DiagramModule, template: CfnTemplate): string {
  return architectureSvg(architectureModel(module, template), ARCHITECTURE_TITLE);
}
