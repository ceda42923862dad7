#!/bin/bash
# Image build step (Packer shell provisioner): everything the first boot needs, so the
# instance downloads nothing when a buyer launches it.
set -euo pipefail
SRC=/tmp/puffindb-image
dnf install -y nodejs20 unzip
ln -sf "$(command -v node-20 || command -v node)" /usr/bin/node
curl -fsSLo /tmp/terraform.zip "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip"
unzip -o /tmp/terraform.zip -d /usr/local/bin terraform && rm /tmp/terraform.zip
id puffindb >/dev/null 2>&1 || useradd --system --home-dir /var/lib/puffindb --shell /sbin/nologin puffindb
install -d -o puffindb -g puffindb -m 0750 /var/lib/puffindb
install -d -m 0755 /opt/puffindb/app /opt/puffindb/terraform /opt/puffindb/lambda /opt/puffindb/bin /opt/puffindb/terraform-providers
python3 -m zipfile -e "$SRC/lambda/server.zip" /opt/puffindb/app
cp "$SRC/app/metering.mjs" /opt/puffindb/app/
cp "$SRC"/lambda/*.zip /opt/puffindb/lambda/ && rm -f /opt/puffindb/lambda/server.zip
cp "$SRC"/terraform/*.tf.json /opt/puffindb/terraform/
# The provider mirror: `terraform init` at boot reads only this directory.
(cd /opt/puffindb/terraform && terraform providers mirror -platform=linux_amd64 /opt/puffindb/terraform-providers)
cat > /opt/puffindb/terraformrc <<'RC'
provider_installation {
  filesystem_mirror {
    path    = "/opt/puffindb/terraform-providers"
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
RC
install -m 0755 "$SRC/boot/puffindb-first-boot" "$SRC/boot/puffindb-destroy" /opt/puffindb/bin/
install -m 0644 "$SRC"/boot/*.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable puffindb-first-boot.service
# No credentials or keys on the image (Marketplace AMI policy).
rm -rf /tmp/puffindb-image /home/ec2-user/.ssh/authorized_keys /root/.ssh/authorized_keys
