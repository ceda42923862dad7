// Every output of the deployment, declared once: the stack gives each a value (the type
// makes a missing one a compile error) and docs/DEPLOY.md lists them from this table.

export interface OutputSpec {
  description: string;
  sensitive?: boolean;
}

export const OUTPUTS = {
  api_url: { description: 'Base URL of the admin API (API Gateway HTTP API, default stage); clients send a bearer API key.' },
  warehouse_url: { description: 's3:// URL of the lake (PUFFINDB_WAREHOUSE), for other engines reading the same Iceberg tables.' },
  lake_bucket: { description: 'Name of the lake bucket (Iceberg data and metadata; versioned).' },
  results_bucket: { description: 'Name of the results bucket (large query results; expiring).' },
  shuffle_bucket: { description: 'Name of the shuffle bucket (partials between workers and coordinator; expiring).' },
  redis_primary_endpoint: { description: 'Primary endpoint address of the Redis replication group.' },
  redis_url: { description: 'rediss:// URL of Redis without credentials (REDIS_URL of the functions).' },
  redis_auth_secret_arn: { description: 'ARN of the Secrets Manager secret holding the Redis AUTH token.' },
  admin_key_secret_arn: {
    description:
      'ARN of the Secrets Manager secret holding the first admin API key (SecretString): `aws secretsmanager get-secret-value --secret-id <arn> --query SecretString --output text`.',
  },
  coordinator_function_name: { description: 'Name of the coordinator Lambda.' },
  worker_function_name: { description: 'Name of the worker Lambda.' },
  admin_function_name: { description: 'Name of the admin API Lambda.' },
  vpc_id: { description: 'VPC the deployment runs in (created or brought).' },
  private_subnet_ids: { description: 'Private subnets of the functions, Redis and Monostore.' },
  lambda_security_group_id: { description: 'Security group of the Lambdas.' },
  kms_key_arn: { description: 'ARN of the KMS key encrypting buckets, logs, Redis and its secret; grant kms:Decrypt to other readers of the lake.' },
  monostore_instance_id: { description: 'Id of the Monostore instance; null unless monostore_enabled.' },
  monostore_private_ip: { description: 'Private IP of the Monostore (HTTP on port 8080); null unless monostore_enabled.' },
} as const satisfies Record<string, OutputSpec>;

export type OutputName = keyof typeof OUTPUTS;
