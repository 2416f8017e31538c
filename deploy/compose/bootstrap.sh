#!/bin/sh
# docker-compose.yml's one-shot bootstrap, run in the k3s image (it has kubectl): apply the chart's
# shared files (CRD, RBAC, serving templates) to the k3s cluster and write the least-privilege
# kubeconfigs of the management API and the controller into the shared /kube volume.
set -eu
OUT=/output/kubeconfig.yaml
i=0
until [ -s "$OUT" ]; do i=$((i + 1)); [ "$i" -gt 120 ] && { echo "bootstrap: no $OUT from k3s" >&2; exit 1; }; sleep 1; done
# k3s writes its own address (127.0.0.1); the other containers reach it as k3s. The admin
# kubeconfig stays inside this container: the shared volume only gets the narrow identities.
sed 's#https://127.0.0.1:6443#https://k3s:6443#' "$OUT" > /tmp/admin.kubeconfig
export KUBECONFIG=/tmp/admin.kubeconfig
k() { kubectl "$@"; }
apply() { k apply --server-side --field-manager=imm-compose --force-conflicts "$@"; }

apply -f /chart/crds/
for ns in imm-system imm-servings; do
  k create namespace "$ns" --dry-run=client -o yaml | apply -f -
done
apply -f /chart/files/rbac/
k wait --for=condition=Established --timeout=60s crd/inference-endpoints.ai.intel.com

# Identities: service accounts bound to the shared roles; the admin group to the platform-admin role.
for sa in imm-management-api imm-controller; do
  k -n imm-system create serviceaccount "$sa" --dry-run=client -o yaml | apply -f -
  k create clusterrolebinding "$sa" --clusterrole="$sa" --serviceaccount="imm-system:$sa" --dry-run=client -o yaml \
    | apply -f -
  k -n imm-system create rolebinding "$sa" --role="$sa" --serviceaccount="imm-system:$sa" --dry-run=client -o yaml | apply -f -
done
k create clusterrolebinding imm-platform-admin --clusterrole=imm-platform-admin --group="${IMM_ADMIN_GROUP:-admin}" \
  --dry-run=client -o yaml | apply -f -
# The admission policy that confines the admin group's writes to tenant namespaces, with its parameters.
apply -f /chart/files/policies/
k -n imm-system create configmap imm-platform-admin-tenants --from-literal=adminGroup="${IMM_ADMIN_GROUP:-admin}" \
  --from-literal=tenantLabelKey=created_by --from-literal=tenantLabelValue=platform_admin \
  --from-literal=servingsNamespace=imm-servings --dry-run=client -o yaml | apply -f -
apply -f - <<'BINDING'
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: imm-platform-admin-tenants
spec:
  policyName: imm-platform-admin-tenants
  validationActions: [Deny]
  paramRef: {name: imm-platform-admin-tenants, namespace: imm-system, parameterNotFoundAction: Allow}
BINDING

# Serving templates: one labelled ConfigMap per folder, data keys <part>.tmpl (servings/catalogue.py).
for dir in /chart/files/serving-templates/*/; do
  name=$(basename "$dir")
  set --
  for file in "$dir"*.yaml.j2; do
    part=$(basename "$file" .yaml.j2)
    set -- "$@" "--from-file=$part.tmpl=$file"
  done
  k -n imm-servings create configmap "$name" "$@" --dry-run=client -o yaml \
    | k label --local -f - -o yaml ai.intel.com/serving-template=true app.kubernetes.io/part-of=inference-model-manager \
    | apply -f -
done

# The inference TLS secret tenants get a copy of (made by the certs service).
k -n imm-system create secret tls tls-secret --cert=/kube/inference.crt --key=/kube/inference.key --dry-run=client -o yaml \
  | apply -f -

# Kubeconfigs with a service-account token each (a laptop: one year, renewed by re-running compose up).
k config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > /kube/ca.crt
for sa in imm-management-api imm-controller; do
  token=$(k -n imm-system create token "$sa" --duration=8760h)
  file=/kube/${sa#imm-}.kubeconfig
  rm -f "$file"
  k config --kubeconfig="$file" set-cluster k3s --server=https://k3s:6443 --certificate-authority=/kube/ca.crt --embed-certs=true >/dev/null
  k config --kubeconfig="$file" set-credentials "$sa" --token="$token" >/dev/null
  k config --kubeconfig="$file" set-context "$sa" --cluster=k3s --user="$sa" --namespace=imm-system >/dev/null
  k config --kubeconfig="$file" use-context "$sa" >/dev/null
  chmod 0644 "$file"
done
echo "bootstrap: CRD, RBAC, serving templates and kubeconfigs ready"
