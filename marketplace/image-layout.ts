// Where things live on the product's image and on a running instance: one table read by
// the template (UserData, outputs), the AMI recipe, the first-boot files and their tests,
// so a renamed path or unit is renamed everywhere.

export const IMAGE = {
  /** The runtime bundle (server.mjs with DuckDB's native binding) and metering.mjs. */
  appDir: '/opt/puffindb/app',
  /** The synthesized module (cdk.tf.json), marketplace.tf.json and the Lambda zips. */
  terraformDir: '/opt/puffindb/terraform',
  lambdaArtifactsDir: '/opt/puffindb/lambda',
  /** Provider mirror, so `terraform init` needs no network. */
  providerMirrorDir: '/opt/puffindb/terraform-providers',
  terraformCliConfig: '/opt/puffindb/terraformrc',
  binDir: '/opt/puffindb/bin',
  nodeBin: '/usr/bin/node',
  terraformBin: '/usr/local/bin/terraform',
  /** Written by UserData from the stack's parameters. */
  bootstrapEnv: '/etc/puffindb/bootstrap.env',
  /** Written by first boot from `terraform output`: the environment of `puffindb serve`. */
  runtimeEnv: '/etc/puffindb/puffindb.env',
  /** Written by first boot: the listing's product code (from instance metadata) for the metering service. */
  meteringEnv: '/etc/puffindb/metering.env',
  configDir: '/etc/puffindb',
  /** Entry points of the runtime bundle in appDir. */
  serverEntry: '/opt/puffindb/app/server.mjs',
  meteringEntry: '/opt/puffindb/app/metering.mjs',
  /** Working copy of the module (state lives in the stack's state bucket). */
  workDir: '/var/lib/puffindb/deploy',
  home: '/var/lib/puffindb',
  /** Present once the first boot applied the module: later boots only start the services. */
  appliedMarker: '/var/lib/puffindb/deploy/.applied',
  logFile: '/var/log/puffindb-first-boot.log',
} as const;

export const UNITS = {
  firstBoot: 'puffindb-first-boot.service',
  server: 'puffindb.service',
  metering: 'puffindb-metering.service',
} as const;

export const SCRIPTS = {
  firstBoot: 'puffindb-first-boot',
  destroy: 'puffindb-destroy',
} as const;

/** Versions pinned into the image; the provider version is read from the synthesized module. */
export const PINNED = {
  terraform: '1.9.8',
  nodeMajor: 20,
} as const;

/**
 * Variables UserData writes to IMAGE.bootstrapEnv besides the TF_VAR_ ones: the scripts
 * read exactly these, and a test checks both sides.
 */
export const BOOTSTRAP_VARS = [
  'PUFFINDB_STACK_NAME',
  'AWS_REGION',
  'PUFFINDB_STATE_BUCKET',
  'PUFFINDB_WAIT_HANDLE_URL',
  'PUFFINDB_ADMIN_KEY_SECRET_ARN',
] as const;

/** Terraform variables the Marketplace extension adds to the synthesized module. */
export const EXTENSION_VARIABLES = {
  control_plane_security_group_id: 'Security group of the Marketplace instance (the control plane): Redis and the interface endpoints accept it.',
} as const;

/** Tag every resource of one deployment carries (through the module's default tags); the instance role's conditions use it. */
export const DEPLOYMENT_TAG = 'puffindb-deployment';
