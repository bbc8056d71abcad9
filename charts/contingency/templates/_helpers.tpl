{{/*
Names. The objects are "<release>-contingency-<part>", or "<release>-<part>" when the release's name already says
contingency. Truncated to 52 characters so that a CronJob's Job names (11 more) stay within 63.
*/}}
{{- define "contingency.name" -}}
{{- default "contingency" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "contingency.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else if contains (include "contingency.name" .) .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "contingency.name" .) | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "contingency.labels" -}}
app.kubernetes.io/name: {{ include "contingency.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "contingency.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "runner"). */}}
{{- define "contingency.selectorLabels" -}}
app.kubernetes.io/name: {{ include "contingency.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image tag: image.tag, else the chart's appVersion. */}}
{{- define "contingency.tag" -}}
{{- if .Values.image.tag }}{{ .Values.image.tag }}{{ else }}{{ .Chart.AppVersion }}{{ end -}}
{{- end -}}

{{- define "contingency.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "contingency.tag" .) -}}
{{- end -}}

{{- define "contingency.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "contingency.fullname" .)) -}}
{{- end -}}

{{- define "contingency.appNamespace" -}}
{{- .Values.app.namespace | default .Release.Namespace -}}
{{- end -}}

{{/*
The Secret's keys one component reads, as a YAML list of {name, key, env}: name is the logical name (secrets.keys,
secrets.values), key the key in the Secret, env the NAME_FILE variable pointing at the mounted file. Only what the
component needs is mounted. (dict "root" $ "component" "backup")
*/}}
{{- define "contingency.secretEntries" -}}
{{- $v := .root.Values -}}
{{- $c := .component -}}
{{- $entries := list -}}
{{- if and (eq $c "sidecar") $v.sidecar.apiEnabled -}}
{{- $entries = append $entries (dict "name" "apiToken" "env" "API_ADMIN_TOKEN_FILE") -}}
{{- end -}}
{{- if and $v.database.passwordFromSecret (has $c (list "backup" "cleanup" "runner" "sidecar" "restore")) -}}
{{- $entries = append $entries (dict "name" "databasePassword" "env" "PGPASSWORD_FILE") -}}
{{- end -}}
{{- if and $v.store.s3.enabled $v.store.s3.credentialsFromSecret -}}
{{- $entries = append $entries (dict "name" "s3AccessKeyId" "env" "AWS_ACCESS_KEY_ID_FILE") -}}
{{- $entries = append $entries (dict "name" "s3SecretAccessKey" "env" "AWS_SECRET_ACCESS_KEY_FILE") -}}
{{- end -}}
{{- if and $v.signing.enabled (has $c (list "backup" "runner" "sidecar")) -}}
{{- $entries = append $entries (dict "name" "signingKey" "env" "BACKUP_SIGNING_KEY_FILE") -}}
{{- end -}}
{{- if and $v.encryption.identityFromSecret (has $c (list "drill" "runner" "restore")) -}}
{{- $entries = append $entries (dict "name" "ageIdentity" "env" "AGE_IDENTITY_FILE") -}}
{{- end -}}
{{- if and $v.encryption.passphraseFromSecret (has $c (list "backup" "drill" "runner" "sidecar" "restore")) -}}
{{- $entries = append $entries (dict "name" "agePassphrase" "env" "AGE_PASSPHRASE_FILE") -}}
{{- end -}}
{{- if eq $c "drill" -}}
{{- $entries = append $entries (dict "name" "drillDatabaseURL" "env" "DRILL_DATABASE_URL_FILE") -}}
{{- end -}}
{{- if and $v.notifications.backupWebhook (has $c (list "backup" "cleanup" "drill" "runner" "sidecar")) -}}
{{- $entries = append $entries (dict "name" "backupWebhookURL" "env" "BACKUP_WEBHOOK_URL_FILE") -}}
{{- end -}}
{{- if and $v.notifications.rollbackWebhook (has $c (list "runner" "sidecar")) -}}
{{- $entries = append $entries (dict "name" "rollbackWebhookURL" "env" "ROLLBACK_WEBHOOK_URL_FILE") -}}
{{- end -}}
{{- if and $v.notifications.ping (has $c (list "backup" "cleanup" "drill")) -}}
{{- $entries = append $entries (dict "name" "backupPingURL" "env" "BACKUP_PING_URL_FILE") -}}
{{- end -}}
{{- $out := list -}}
{{- range $entries -}}
{{- $out = append $out (dict "name" .name "env" .env "key" (get $v.secrets.keys .name)) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Whether the chart's ConfigMap of public material (verify keys, age recipients, S3 CA) exists. */}}
{{- define "contingency.hasPublicConfig" -}}
{{- if or .Values.signing.verifyKeys .Values.encryption.ageRecipients .Values.store.s3.caBundle -}}true{{- end -}}
{{- end -}}

{{/*
The environment of one component: store, database, public keys, the NAME_FILE of each mounted secret, and the
component's own settings. No value here is a secret. (dict "root" $ "component" "backup")
*/}}
{{- define "contingency.env" -}}
{{- $v := .root.Values -}}
{{- $c := .component -}}
{{- if $v.store.volume.enabled }}
- name: BACKUP_DIR
  value: /backups
{{- end }}
{{- if $v.store.s3.enabled }}
- name: BACKUP_S3_URL
  value: {{ $v.store.s3.url | quote }}
{{- with $v.store.s3.endpoint }}
- name: S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $v.store.s3.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
- name: S3_FORCE_PATH_STYLE
  value: {{ $v.store.s3.forcePathStyle | quote }}
{{- with $v.store.s3.storageClass }}
- name: S3_STORAGE_CLASS
  value: {{ . | quote }}
{{- end }}
{{- if $v.store.s3.caBundle }}
- name: S3_CA_BUNDLE
  value: /etc/contingency/s3-ca.pem
{{- end }}
{{- end }}
- name: BACKUP_PREFIX
  value: {{ $v.store.prefix | quote }}
- name: LOG_FORMAT
  value: {{ $v.logFormat | quote }}
{{- if ne $c "drill" }}
- name: PGHOST
  value: {{ $v.database.host | quote }}
- name: PGPORT
  value: {{ $v.database.port | quote }}
- name: DATABASE_NAME
  value: {{ $v.database.name | quote }}
- name: DATABASE_USER
  value: {{ $v.database.user | quote }}
{{- end }}
{{- if and $v.signing.verifyKeys (has $c (list "cleanup" "drill" "runner" "restore" "sidecar")) }}
- name: BACKUP_VERIFY_KEYS_FILE
  value: /etc/contingency/verify-keys.pem
{{- end }}
{{- if and $v.encryption.ageRecipients (has $c (list "backup" "runner" "sidecar")) }}
- name: AGE_RECIPIENTS_FILE
  value: /etc/contingency/age-recipients.txt
{{- end }}
{{- range (include "contingency.secretEntries" .) | fromYamlArray }}
- name: {{ .env }}
  value: /run/secrets/contingency/{{ .key }}
{{- end }}
{{- if has $c (list "backup" "runner" "sidecar" "restore") }}
- name: UPLOADS_DIR
  value: {{ ternary $v.uploads.mountPath "" (and $v.uploads.enabled (or (ne $c "sidecar") (eq $v.sidecar.mode "deployment") (ne $v.sidecar.injected.uploadsVolume ""))) | quote }}
{{- end }}
{{- if has $c (list "backup" "sidecar") }}
- name: ENV_FILE
  value: {{ ternary "/app/env/.env" "" $v.envFile.enabled | quote }}
- name: APP_DIR
  value: {{ ternary "/app/package" "" (ne $v.app.packageConfigMap "") | quote }}
- name: BACKUP_COMPRESSION
  value: {{ $v.backup.compression | quote }}
{{- end }}
{{- if has $c (list "runner" "restore") }}
{{- /* The .env is restored only when asked for (RESTORE_PARTS with env): its target is then ENV_FILE. */}}
- name: ENV_FILE
  value: ""
- name: RESTORE_PARTS
  value: {{ (ternary $v.runner.restoreParts $v.restore.job.parts (eq $c "runner")) | quote }}
- name: RESTORE_TERMINATE_CONNECTIONS
  value: {{ (ternary $v.runner.terminateConnections $v.restore.job.terminateConnections (eq $c "runner")) | quote }}
{{- end }}
{{- if has $c (list "backup" "runner" "sidecar") }}
{{- include "contingency.appControlEnv" .root }}
{{- end }}
{{- if has $c (list "runner" "sidecar") }}
- name: HEALTH_CHECK_URL
  value: {{ $v.app.healthCheckURL | quote }}
- name: HEALTH_CHECK_TIMEOUT
  value: {{ $v.app.healthCheckTimeout | quote }}
- name: SIDECAR_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- end -}}

{{/* APP_CONTROL and its settings. */}}
{{- define "contingency.appControlEnv" -}}
{{- $v := .Values }}
- name: APP_CONTROL
  value: {{ $v.appControl.kind | quote }}
{{- if eq $v.appControl.kind "kubernetes" }}
- name: APP_DEPLOYMENT
  value: {{ $v.app.deployment | quote }}
- name: APP_NAMESPACE
  value: {{ include "contingency.appNamespace" . | quote }}
{{- else }}
- name: APP_STOP_COMMAND
  value: {{ $v.appControl.stopCommand | quote }}
- name: APP_START_COMMAND
  value: {{ $v.appControl.startCommand | quote }}
{{- end }}
{{- end -}}

{{/* Extra environment variables of a component (a list of {name, value}). */}}
{{- define "contingency.extraEnv" -}}
{{- range . }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- end -}}

{{/*
Volumes of one component's pod (names prefixed "contingency-" so that they can join an application's pod).
(dict "root" $ "component" "backup" "uploadsWritable" false)
*/}}
{{- define "contingency.volumes" -}}
{{- $v := .root.Values -}}
{{- $c := .component -}}
- name: contingency-tmp
  emptyDir:
    sizeLimit: {{ $v.tmpSizeLimit }}
{{- if $v.store.volume.enabled }}
- name: contingency-store
  persistentVolumeClaim:
    claimName: {{ $v.store.volume.existingClaim | default (printf "%s-store" (include "contingency.fullname" .root)) }}
{{- end }}
{{- $entries := (include "contingency.secretEntries" .) | fromYamlArray }}
{{- if $entries }}
- name: contingency-secrets
  secret:
    secretName: {{ include "contingency.secretName" .root }}
    # Group-readable: the files belong to root and to the pod's fsGroup (10001); the process is uid 10001.
    defaultMode: 0440
    items:
{{- range $entries }}
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
{{- if include "contingency.hasPublicConfig" .root }}
- name: contingency-config
  configMap:
    name: {{ include "contingency.fullname" .root }}-config
    defaultMode: 0444
{{- end }}
{{- if and $v.uploads.enabled (has $c (list "backup" "runner" "sidecar" "restore")) (or (ne $c "sidecar") (eq $v.sidecar.mode "deployment")) }}
- name: contingency-uploads
  persistentVolumeClaim:
    claimName: {{ required "uploads.existingClaim is empty: name the application's uploads claim, or set uploads.enabled=false" $v.uploads.existingClaim }}
    readOnly: {{ not (has $c (list "runner" "restore")) }}
{{- end }}
{{- if and $v.envFile.enabled (has $c (list "backup" "sidecar")) }}
- name: contingency-env
  secret:
    secretName: {{ required "envFile.secretName is empty: name the Secret holding the application's .env, or set envFile.enabled=false" $v.envFile.secretName }}
    defaultMode: 0440
    items:
      - key: {{ $v.envFile.key }}
        path: .env
{{- end }}
{{- if and $v.app.packageConfigMap (has $c (list "backup" "sidecar")) }}
- name: contingency-package
  configMap:
    name: {{ $v.app.packageConfigMap }}
    optional: true
{{- end }}
{{- end -}}

{{/* Volume mounts of one component's container. (dict "root" $ "component" "backup") */}}
{{- define "contingency.volumeMounts" -}}
{{- $v := .root.Values -}}
{{- $c := .component -}}
- name: contingency-tmp
  mountPath: /tmp
{{- if $v.store.volume.enabled }}
- name: contingency-store
  mountPath: /backups
{{- end }}
{{- if (include "contingency.secretEntries" .) | fromYamlArray }}
- name: contingency-secrets
  mountPath: /run/secrets/contingency
  readOnly: true
{{- end }}
{{- if include "contingency.hasPublicConfig" .root }}
- name: contingency-config
  mountPath: /etc/contingency
  readOnly: true
{{- end }}
{{- if and $v.uploads.enabled (has $c (list "backup" "runner" "sidecar" "restore")) }}
{{- if or (ne $c "sidecar") (eq $v.sidecar.mode "deployment") }}
- name: contingency-uploads
  mountPath: {{ $v.uploads.mountPath }}
  readOnly: {{ not (has $c (list "runner" "restore")) }}
{{- else if $v.sidecar.injected.uploadsVolume }}
- name: {{ $v.sidecar.injected.uploadsVolume }}
  mountPath: {{ $v.uploads.mountPath }}
  readOnly: true
{{- end }}
{{- end }}
{{- if and $v.envFile.enabled (has $c (list "backup" "sidecar")) }}
- name: contingency-env
  mountPath: /app/env
  readOnly: true
{{- end }}
{{- if and $v.app.packageConfigMap (has $c (list "backup" "sidecar")) }}
- name: contingency-package
  mountPath: /app/package
  readOnly: true
{{- end }}
{{- end -}}

{{/* The pod's security context: every container runs as the image's user (10001), which owns the store. */}}
{{- define "contingency.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "contingency.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Scheduling and pod metadata shared by every pod. */}}
{{- define "contingency.podScheduling" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
{{- toYaml . | trim | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
{{- toYaml . | trim | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
{{- toYaml . | trim | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The liveness probe of every --loop process: the age of the liveness file its loop keeps touching. */}}
{{- define "contingency.loopLivenessProbe" -}}
exec:
  command: [health-sidecar, --liveness, --max-age, 60s]
periodSeconds: 30
timeoutSeconds: 10
failureThreshold: 3
{{- end -}}

{{/*
The health sidecar's container: health-sidecar --loop serving /healthz, /metrics and the admin API on
sidecar.port. Used by the sidecar Deployment, and by an application's chart (with this chart as a dependency)
to add the sidecar to the application's pod (.Subcharts.contingency is this chart's own context, its values
and release):

    containers:
      - name: app
        …
      {{- include "contingency.sidecarContainer" .Subcharts.contingency | trim | nindent 6 }}
    volumes:
      {{- include "contingency.sidecarVolumes" .Subcharts.contingency | trim | nindent 6 }}

The application's pod then needs securityContext.fsGroup 10001, so that the sidecar (uid 10001) can read its
secret files (mode 0440) and write the store.
*/}}
{{- define "contingency.sidecarContainer" -}}
- name: contingency-sidecar
  image: {{ include "contingency.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: [health-sidecar, --loop]
  env:
    - name: SIDECAR_PORT
      value: {{ .Values.sidecar.port | quote }}
    - name: HEALTH_CHECK_INTERVAL
      value: {{ .Values.sidecar.healthCheckInterval | quote }}
    - name: HEALTH_CHECK_FAILURES
      value: {{ .Values.sidecar.healthCheckFailures | quote }}
    - name: HEALTH_CHECK_START_PERIOD
      value: {{ .Values.sidecar.healthCheckStartPeriod | quote }}
    - name: BACKUP_STALE_AFTER
      value: {{ .Values.sidecar.backupStaleAfter | quote }}
    # POST /api/backups/cleanup keeps what cleanup-job keeps.
    - name: BACKUP_KEEP_DAILY
      value: {{ .Values.cleanup.keepDaily | quote }}
    - name: BACKUP_KEEP_WEEKLY
      value: {{ .Values.cleanup.keepWeekly | quote }}
    - name: BACKUP_KEEP_MONTHLY
      value: {{ .Values.cleanup.keepMonthly | quote }}
    - name: BACKUP_KEEP_MIN
      value: {{ .Values.cleanup.keepMin | quote }}
    {{- with .Values.sidecar.trustedProxies }}
    - name: TRUSTED_PROXIES
      value: {{ . | quote }}
    {{- end }}
    {{- include "contingency.env" (dict "root" . "component" "sidecar") | trim | nindent 4 }}
    {{- include "contingency.extraEnv" .Values.sidecar.extraEnv | trim | nindent 4 }}
  ports:
    - name: http
      containerPort: {{ .Values.sidecar.port }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: {{ .Values.sidecar.livenessPeriodSeconds }}
    timeoutSeconds: 10
    failureThreshold: {{ .Values.sidecar.livenessFailureThreshold }}
  readinessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: {{ .Values.sidecar.readinessPeriodSeconds }}
    timeoutSeconds: 5
    failureThreshold: 3
  resources:
    {{- toYaml .Values.sidecar.resources | trim | nindent 4 }}
  securityContext:
    {{- include "contingency.containerSecurityContext" . | trim | nindent 4 }}
  volumeMounts:
    {{- include "contingency.volumeMounts" (dict "root" . "component" "sidecar") | trim | nindent 4 }}
{{- end -}}

{{/* The volumes the sidecar container needs, for an application's pod (see contingency.sidecarContainer). */}}
{{- define "contingency.sidecarVolumes" -}}
{{- include "contingency.volumes" (dict "root" . "component" "sidecar") -}}
{{- end -}}

{{/*
Checks of the values that a schema cannot express; each fails the rendering with what to change.
*/}}
{{- define "contingency.validate" -}}
{{- $v := .Values -}}
{{- if and (eq $v.sidecar.mode "injected") (eq $v.appControl.kind "kubernetes") -}}
{{- fail "sidecar.mode=injected with appControl.kind=kubernetes: a rollback scales the application's Deployment to 0, which would stop a sidecar living in its pod in the middle of the incident. Use sidecar.mode=deployment (the sidecar in its own Deployment), or appControl.kind=command" -}}
{{- end -}}
{{- if and (eq $v.appControl.kind "kubernetes") (not $v.app.deployment) (or $v.runner.enabled $v.backup.enabled (ne $v.sidecar.mode "disabled")) -}}
{{- fail "appControl.kind=kubernetes needs app.deployment: the name of the application's Deployment (APP_DEPLOYMENT)" -}}
{{- end -}}
{{- if and (not $v.store.volume.enabled) (not $v.store.s3.enabled) -}}
{{- fail "no store: set store.volume.enabled=true (a PersistentVolumeClaim) or store.s3.enabled=true with store.s3.url" -}}
{{- end -}}
{{- if and $v.store.s3.enabled (not (hasPrefix "s3://" $v.store.s3.url)) -}}
{{- fail (printf "store.s3.url=%q is not an s3://bucket/prefix URL" $v.store.s3.url) -}}
{{- end -}}
{{- if and (eq $v.sidecar.mode "injected") (not $v.sidecar.injected.podSelector) -}}
{{- fail "sidecar.mode=injected needs sidecar.injected.podSelector: the labels of the application's pods, for the sidecar's Service" -}}
{{- end -}}
{{- if and $v.restore.job.enabled (has "env" (splitList "," (nospace $v.restore.job.parts))) -}}
{{- fail "restore.job.parts includes env: the .env comes from a read-only Secret here; restore it with restore-job --extract and kubectl (see the README)" -}}
{{- end -}}
{{- if and $v.runner.enabled (has "env" (splitList "," (nospace $v.runner.restoreParts))) -}}
{{- fail "runner.restoreParts includes env: the .env comes from a read-only Secret here; restore it with restore-job --extract and kubectl (see the README)" -}}
{{- end -}}
{{- end -}}

{{/*
The ServiceAccount of a component, and whether its token is mounted: only the runner (get, patch the Deployment,
list pods) and the backup-taking components (get the Deployment, to record its version) talk to the API server, and
only with appControl kubernetes. (dict "root" $ "component" "runner")
*/}}
{{- define "contingency.serviceAccount" -}}
{{- $v := .root.Values -}}
{{- $name := "" -}}
{{- if eq $v.appControl.kind "kubernetes" -}}
{{- if eq .component "runner" -}}
{{- $name = ternary (printf "%s-runner" (include "contingency.fullname" .root)) $v.rbac.runnerServiceAccount $v.rbac.create -}}
{{- else if has .component (list "backup" "sidecar") -}}
{{- $name = ternary (printf "%s-recorder" (include "contingency.fullname" .root)) $v.rbac.recorderServiceAccount $v.rbac.create -}}
{{- end -}}
{{- end -}}
{{- if $name }}
serviceAccountName: {{ $name }}
automountServiceAccountToken: true
{{- else }}
automountServiceAccountToken: false
{{- end }}
{{- end -}}

{{/*
A CronJob running one job once per schedule: never two runs at once (concurrencyPolicy Forbid; the store's locks
would refuse the second anyway), finished Jobs kept by the history limits.
(dict "root" $ "component" "backup" "args" (list "backup-job") "job" .Values.backup "env" "<extra env YAML>")
*/}}
{{- define "contingency.cronJob" -}}
{{- $root := .root -}}
{{- $job := .job -}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "contingency.fullname" $root }}-{{ .component }}
  labels:
    {{- include "contingency.labels" $root | trim | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  schedule: {{ $job.schedule | quote }}
  {{- with $job.timeZone }}
  timeZone: {{ . | quote }}
  {{- end }}
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ $job.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ $job.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ $job.failedJobsHistoryLimit }}
  jobTemplate:
    spec:
      backoffLimit: {{ $job.backoffLimit }}
      {{- if $job.activeDeadlineSeconds }}
      activeDeadlineSeconds: {{ $job.activeDeadlineSeconds }}
      {{- end }}
      template:
        metadata:
          labels:
            {{- include "contingency.selectorLabels" (dict "root" $root "component" .component) | trim | nindent 12 }}
            {{- with $root.Values.podLabels }}
            {{- toYaml . | trim | nindent 12 }}
            {{- end }}
          {{- with $root.Values.podAnnotations }}
          annotations:
            {{- toYaml . | trim | nindent 12 }}
          {{- end }}
        spec:
          restartPolicy: Never
          {{- include "contingency.serviceAccount" (dict "root" $root "component" .component) | trim | nindent 10 }}
          securityContext:
            {{- include "contingency.podSecurityContext" $root | trim | nindent 12 }}
          {{- include "contingency.podScheduling" $root | trim | nindent 10 }}
          containers:
            - name: {{ .component }}
              image: {{ include "contingency.image" $root }}
              imagePullPolicy: {{ $root.Values.image.pullPolicy }}
              args: {{ toJson .args }}
              env:
                {{- include "contingency.env" (dict "root" $root "component" .component) | trim | nindent 16 }}
                {{- .env | trim | nindent 16 }}
                {{- include "contingency.extraEnv" $job.extraEnv | trim | nindent 16 }}
              resources:
                {{- toYaml $job.resources | trim | nindent 16 }}
              securityContext:
                {{- include "contingency.containerSecurityContext" $root | trim | nindent 16 }}
              volumeMounts:
                {{- include "contingency.volumeMounts" (dict "root" $root "component" .component) | trim | nindent 16 }}
          volumes:
            {{- include "contingency.volumes" (dict "root" $root "component" .component) | trim | nindent 12 }}
{{- end -}}
