// What the Marketplace instance adds to the synthesized module, as extra JSON files
// Terraform loads beside cdk.tf.json: the S3 backend (the stack's state bucket), rules
// letting the instance's security group reach Redis and the interface endpoints (the
// instance runs the control plane and the metering service, which use the state store), and
// an output with the environment of `puffindb serve`, taken from the Monostore's own boot
// script in the synthesized module, so the control plane is configured exactly as the
// Monostore would be. Addresses are checked against the module, so a rename in stacks/
// fails here rather than at a buyer's `terraform apply`.

import { PuffinError } from '../runtime/errors.ts';
import { EXTENSION_VARIABLES } from './image-layout.ts';

/** The parts of cdk.tf.json this reads. */
export interface SynthesizedModule {
  resource: Record<string, Record<string, Record<string, unknown>>>;
  variable: Record<string, unknown>;
  output: Record<string, unknown>;
  terraform: { backend?: Record<string, unknown>; required_providers?: Record<string, { source?: string; version?: string }> };
}

const REDIS_PORT = 6379;
const HTTPS_PORT = 443;

function requireResource(module: SynthesizedModule, type: string, name: string): Record<string, unknown> {
  const found = module.resource[type]?.[name];
  if (!found) throw new PuffinError('internal', `the synthesized module has no ${type}.${name}; the Marketplace extension depends on it`);
  return found;
}

/** The Monostore's environment file, with Terraform interpolations intact. */
export function controlPlaneEnvironment(module: SynthesizedModule): string {
  const userData = requireResource(module, 'aws_instance', 'monostore_instance').user_data;
  const match = typeof userData === 'string' ? /cat > \/etc\/puffindb\.env <<'ENV'\n([\s\S]*?)\nENV\n/.exec(userData) : null;
  if (!match?.[1]) throw new PuffinError('internal', 'the Monostore boot script no longer writes /etc/puffindb.env in a quoted heredoc');
  return `${match[1]}\n`;
}

export function marketplaceExtension(module: SynthesizedModule): Record<string, unknown> {
  requireResource(module, 'aws_security_group', 'redis');
  requireResource(module, 'aws_security_group', 'endpoints');
  if (!('create_vpc_endpoints' in module.variable)) throw new PuffinError('internal', 'the synthesized module has no variable create_vpc_endpoints');
  const sg = 'var.control_plane_security_group_id';
  const rule = (description: string, port: number, count?: string) => ({
    ...(count ? { count } : {}),
    description,
    ip_protocol: 'tcp',
    from_port: port,
    to_port: port,
  });
  return {
    variable: Object.fromEntries(
      Object.entries(EXTENSION_VARIABLES).map(([name, description]) => [name, { type: 'string', description, nullable: false }]),
    ),
    resource: {
      aws_vpc_security_group_ingress_rule: {
        redis_from_control_plane: { ...rule('Redis from the Marketplace control plane', REDIS_PORT), security_group_id: '${aws_security_group.redis.id}', referenced_security_group_id: `\${${sg}}` },
        endpoints_from_control_plane: {
          ...rule('Interface endpoints from the Marketplace control plane', HTTPS_PORT, '${var.create_vpc_endpoints ? 1 : 0}'),
          security_group_id: '${aws_security_group.endpoints.id}',
          referenced_security_group_id: `\${${sg}}`,
        },
      },
    },
    output: {
      control_plane_environment: {
        description: 'Environment file of `puffindb serve` on the Marketplace instance (the Monostore environment).',
        value: controlPlaneEnvironment(module),
      },
    },
  };
}

/** backend_override.tf.json: state in the stack's bucket; bucket, key and region come from `terraform init -backend-config`. */
export function backendOverride(): Record<string, unknown> {
  return { terraform: { backend: { s3: { encrypt: true, use_lockfile: true } } } };
}

/** The AWS provider the module pins, for the image's provider mirror. */
export function pinnedProvider(module: SynthesizedModule): { source: string; version: string } {
  const aws = module.terraform.required_providers?.aws;
  if (!aws?.version || !/^\d+\.\d+\.\d+$/.test(aws.version)) {
    throw new PuffinError('internal', `the synthesized module must pin an exact AWS provider version, found ${JSON.stringify(aws?.version)}`);
  }
  const source = aws.source && aws.source.includes('/') ? aws.source : `hashicorp/${aws.source ?? 'aws'}`;
  return { source: `registry.terraform.io/${source}`, version: aws.version };
}
