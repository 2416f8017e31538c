{{/* Names: every cluster-scoped object carries the release's full name, so two releases never collide. */}}
{{- define "imm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "imm.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "imm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "imm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: inference-model-manager
{{- end -}}

{{/* Selector labels of one component: (list $ "api") */}}
{{- define "imm.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "imm.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The product's image: global.imageRegistry (if any) / image.repository : image.tag (default appVersion). */}}
{{- define "imm.image" -}}
{{- $reference := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- with .Values.global.imageRegistry -}}
{{- printf "%s/%s" (trimSuffix "/" .) $reference -}}
{{- else -}}
{{- $reference -}}
{{- end -}}
{{- end -}}

{{- /* servingImages as the product's SERVING_IMAGES: the values name no registry (like image.repository),
and the product takes SERVING_IMAGES as full references, so global.imageRegistry is put in front here. */ -}}
{{- define "imm.servingImages" -}}
{{- $registry := trimSuffix "/" (default "" .Values.global.imageRegistry) -}}
{{- $images := dict -}}
{{- range $serving, $image := .Values.servingImages -}}
{{- $_ := set $images $serving (ternary (printf "%s/%s" $registry $image) $image (ne $registry "")) -}}
{{- end -}}
{{- toJson $images -}}
{{- end -}}

{{- define "imm.apiServiceAccount" -}}{{ include "imm.fullname" . }}-management-api{{- end -}}
{{- define "imm.controllerServiceAccount" -}}{{ include "imm.fullname" . }}-controller{{- end -}}

{{- define "imm.servingsNamespace" -}}
{{- default .Release.Namespace .Values.servingTemplates.namespace -}}
{{- end -}}

{{- define "imm.ingressHost" -}}
{{- default (printf "imm.%s" .Values.platformDomain) .Values.ingress.host -}}
{{- end -}}

{{/*
The rules of one object in a shared RBAC file (helm/imm/files/rbac/*.yaml, applied as they are by the
devstack): (list $ "files/rbac/controller.yaml" "ClusterRole"). The chart re-emits them under its own
names and subjects, so the rules have one source.
*/}}
{{- define "imm.sharedRules" -}}
{{- $root := index . 0 -}}
{{- $file := index . 1 -}}
{{- $kind := index . 2 -}}
{{- $found := list -}}
{{- range $doc := splitList "\n---\n" ($root.Files.Get $file) -}}
{{- $obj := fromYaml $doc -}}
{{- if and $obj (eq (default "" $obj.kind) $kind) -}}
{{- $found = append $found $obj.rules -}}
{{- end -}}
{{- end -}}
{{- if ne (len $found) 1 -}}
{{- fail (printf "%s must hold exactly one %s" $file $kind) -}}
{{- end -}}
{{- toYaml (first $found) -}}
{{- end -}}

{{- define "imm.required" -}}
{{- $value := index . 0 -}}
{{- if not $value -}}{{- fail (printf "the value %s is required (see docs/deployment.md)" (index . 1)) -}}{{- end -}}
{{- $value -}}
{{- end -}}

{{/* The environment every product process reads (README: configuration). */}}
{{- define "imm.env" -}}
- name: DJANGO_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "imm.required" (list .Values.django.secretKey.existingSecret "django.secretKey.existingSecret") }}
      key: {{ .Values.django.secretKey.key }}
- name: DJANGO_ALLOWED_HOSTS
  value: {{ join "," (concat (list (include "imm.ingressHost" .) "localhost" "127.0.0.1" (include "imm.fullname" .) (printf "%s.%s.svc" (include "imm.fullname" .) .Release.Namespace)) .Values.django.allowedHosts) | quote }}
{{- if .Values.ingress.enabled }}
- name: DJANGO_CSRF_TRUSTED_ORIGINS
  value: {{ printf "https://%s" (include "imm.ingressHost" .) | quote }}
- name: DJANGO_TRUST_PROXY_HEADERS
  value: "true"
{{- end }}
- name: DJANGO_LOG_LEVEL
  value: {{ .Values.django.logLevel | quote }}
- name: IMM_METRICS_PORT
  value: {{ .Values.metrics.port | int | toString | quote }}
- name: IMM_METRICS_ADDRESS
  value: "0.0.0.0"
{{- if .Values.metrics.prometheusUrl }}
- name: PROMETHEUS_URL
  value: {{ .Values.metrics.prometheusUrl | quote }}
{{- end }}
{{- if .Values.metrics.scrapeToken.existingSecret }}
- name: IMM_METRICS_SCRAPE_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.metrics.scrapeToken.existingSecret }}
      key: {{ .Values.metrics.scrapeToken.key }}
{{- end }}
- name: IMM_MAX_JSON_BODY_BYTES
  value: {{ .Values.django.maxJsonBodyBytes | int64 | toString | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "imm.required" (list .Values.database.url.existingSecret "database.url.existingSecret") }}
      key: {{ .Values.database.url.key }}
- name: DATABASE_CONN_MAX_AGE_SECONDS
  value: {{ .Values.database.connMaxAgeSeconds | int64 | toString | quote }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "imm.required" (list .Values.redis.url.existingSecret "redis.url.existingSecret") }}
      key: {{ .Values.redis.url.key }}
- name: OIDC_ISSUER
  value: {{ include "imm.required" (list .Values.oidc.issuer "oidc.issuer") | quote }}
- name: OIDC_API_CLIENT_ID
  value: {{ .Values.oidc.apiClientId | quote }}
- name: OIDC_API_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "imm.required" (list .Values.oidc.apiClientSecret.existingSecret "oidc.apiClientSecret.existingSecret") }}
      key: {{ .Values.oidc.apiClientSecret.key }}
- name: OIDC_CLI_CLIENT_ID
  value: {{ .Values.oidc.cliClientId | quote }}
- name: OIDC_USERNAME_CLAIM
  value: {{ .Values.oidc.usernameClaim | quote }}
- name: OIDC_GROUPS_CLAIM
  value: {{ .Values.oidc.groupsClaim | quote }}
- name: IMM_CLI_REDIRECT_URI
  value: {{ .Values.oidc.cliRedirectUri | quote }}
- name: IMM_ADMIN_GROUP
  value: {{ .Values.adminGroup | quote }}
{{- if .Values.oidc.caBundle.configMap }}
- name: OIDC_CA_FILE
  value: /etc/imm/oidc-ca/{{ .Values.oidc.caBundle.key }}
{{- end }}
- name: IMM_KUBECONFIG
  value: /etc/imm/kube/kubeconfig
- name: SERVING_TEMPLATES_NAMESPACE
  value: {{ include "imm.servingsNamespace" . | quote }}
- name: PLATFORM_DOMAIN
  value: {{ .Values.platformDomain | quote }}
- name: PLATFORM_ADMIN_LABEL
  value: {{ .Values.platformAdminLabel | quote }}
- name: IMM_SYSTEM_NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: SERVING_IMAGE_REGISTRY
  value: {{ .Values.global.imageRegistry | quote }}
- name: SERVING_IMAGES
  value: {{ include "imm.servingImages" . | quote }}
- name: IMM_INFERENCE_TLS_SECRET
  value: {{ .Values.inferenceTlsSecret | quote }}
- name: IMM_INGRESS_NAMESPACE
  value: {{ .Values.ingressControllerNamespace | quote }}
- name: S3_ENDPOINT_URL
  value: {{ include "imm.required" (list .Values.objectStore.endpointUrl "objectStore.endpointUrl") | quote }}
- name: S3_SERVING_ENDPOINT_URL
  value: {{ .Values.objectStore.servingEndpointUrl | quote }}
- name: S3_REGION
  value: {{ .Values.objectStore.region | quote }}
- name: S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "imm.required" (list .Values.objectStore.credentials.existingSecret "objectStore.credentials.existingSecret") }}
      key: {{ .Values.objectStore.credentials.accessKeyIdKey }}
- name: S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.objectStore.credentials.existingSecret }}
      key: {{ .Values.objectStore.credentials.secretAccessKeyKey }}
- name: IMM_STORE_IDENTITY_BACKEND
  value: {{ .Values.objectStore.identityBackend | quote }}
- name: IMM_STORE_KEY_ROTATION_DAYS
  value: {{ .Values.objectStore.keyRotationDays | quote }}
{{- if .Values.objectStore.iam.endpointUrl }}
- name: S3_IAM_ENDPOINT_URL
  value: {{ .Values.objectStore.iam.endpointUrl | quote }}
{{- end }}
{{- if .Values.objectStore.iam.credentials.existingSecret }}
- name: S3_IAM_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.objectStore.iam.credentials.existingSecret }}
      key: {{ .Values.objectStore.iam.credentials.accessKeyIdKey }}
- name: S3_IAM_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.objectStore.iam.credentials.existingSecret }}
      key: {{ .Values.objectStore.iam.credentials.secretAccessKeyKey }}
{{- end }}
{{- if .Values.objectStore.caBundle.configMap }}
- name: S3_CA_FILE
  value: /etc/imm/s3-ca/{{ .Values.objectStore.caBundle.key }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes every product pod mounts: a writable /tmp (the root filesystem is read-only), the kubeconfig, CAs. */}}
{{- define "imm.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
- name: kubeconfig
  configMap:
    name: {{ include "imm.fullname" . }}-kubeconfig
{{- if .Values.oidc.caBundle.configMap }}
- name: oidc-ca
  configMap:
    name: {{ .Values.oidc.caBundle.configMap }}
{{- end }}
{{- if .Values.objectStore.caBundle.configMap }}
- name: s3-ca
  configMap:
    name: {{ .Values.objectStore.caBundle.configMap }}
{{- end }}
{{- end -}}

{{- define "imm.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: kubeconfig
  mountPath: /etc/imm/kube
  readOnly: true
{{- if .Values.oidc.caBundle.configMap }}
- name: oidc-ca
  mountPath: /etc/imm/oidc-ca
  readOnly: true
{{- end }}
{{- if .Values.objectStore.caBundle.configMap }}
- name: s3-ca
  mountPath: /etc/imm/s3-ca
  readOnly: true
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by the three Deployments: (list $ .Values.api) */}}
{{- define "imm.podCommon" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $component.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "imm.volumes" $root | nindent 2 }}
{{- end -}}

{{/* Prometheus scrape annotations of a pod: (list $ port) */}}
{{- define "imm.scrapeAnnotations" -}}
{{- $root := index . 0 -}}
{{- if $root.Values.metrics.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ index . 1 | toString | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}
