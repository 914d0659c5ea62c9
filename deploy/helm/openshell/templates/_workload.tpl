{{/*
The gateway pod template, shared by the StatefulSet and the Deployment.
*/}}
{{- define "openshell.podTemplate" -}}
{{- $v := .Values -}}
{{- $extDb := include "openshell.externalDb" . -}}
metadata:
  annotations:
    checksum/gateway-config: {{ include "openshell.gatewayToml" . | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  labels:
    {{- include "openshell.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: gateway
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "openshell.serviceAccountName" . }}
  automountServiceAccountToken: true
  enableServiceLinks: false
  {{- with $v.imagePullSecrets }}
  # the gateway image's pull secrets only (never the sandboxes')
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  terminationGracePeriodSeconds: {{ int $v.podLifecycle.terminationGracePeriodSeconds }}
  containers:
    - name: openshell-gateway
      image: {{ include "openshell.image" . | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        - --config
        - {{ printf "%s/gateway.toml" (include "openshell.configDir" .) }}
      {{- if or $extDb $v.server.extraEnv }}
      env:
        {{- if $extDb }}
        - name: OPENSHELL_DB_URL
          valueFrom:
            secretKeyRef:
              name: {{ $v.server.externalDbSecret.name }}
              key: {{ $v.server.externalDbSecret.key }}
        {{- end }}
        {{- with $v.server.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      ports:
        - name: grpc
          containerPort: {{ int $v.service.port }}
          protocol: TCP
        - name: health
          containerPort: {{ int $v.service.healthPort }}
          protocol: TCP
        {{- if ne (int $v.service.metricsPort) 0 }}
        - name: metrics
          containerPort: {{ int $v.service.metricsPort }}
          protocol: TCP
        {{- end }}
      {{- with $v.probes.startup }}
      {{- if .enabled }}
      startupProbe:
        httpGet:
          path: /healthz
          port: health
        periodSeconds: {{ int .periodSeconds }}
        timeoutSeconds: {{ int .timeoutSeconds }}
        failureThreshold: {{ int .failureThreshold }}
      {{- end }}
      {{- end }}
      {{- with $v.probes.liveness }}
      {{- if .enabled }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: health
        periodSeconds: {{ int .periodSeconds }}
        timeoutSeconds: {{ int .timeoutSeconds }}
        failureThreshold: {{ int .failureThreshold }}
      {{- end }}
      {{- end }}
      {{- with $v.probes.readiness }}
      {{- if .enabled }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: health
        periodSeconds: {{ int .periodSeconds }}
        timeoutSeconds: {{ int .timeoutSeconds }}
        failureThreshold: {{ int .failureThreshold }}
      {{- end }}
      {{- end }}
      {{- with $v.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: config
          mountPath: {{ include "openshell.configDir" . }}
          readOnly: true
        - name: data
          mountPath: {{ include "openshell.dataDir" . }}
        - name: tmp
          mountPath: /tmp
        {{- if not $v.server.disableTls }}
        - name: tls-server
          mountPath: {{ include "openshell.tlsDir" . }}/server
          readOnly: true
        {{- if $v.server.tls.clientCaSecretName }}
        - name: tls-client-ca
          mountPath: {{ include "openshell.tlsDir" . }}/client-ca
          readOnly: true
        {{- end }}
        {{- end }}
        {{- if $v.server.auth.tokenSecretName }}
        - name: auth-token
          mountPath: {{ include "openshell.authDir" . }}
          readOnly: true
        {{- end }}
        {{- if include "openshell.registryCaBundle" . }}
        - name: registry-ca
          mountPath: {{ include "openshell.registryCaDir" . }}
          readOnly: true
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "openshell.fullname" . }}-config
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if not (include "openshell.dataClaim" .) }}
    - name: data
      emptyDir: {}
    {{- end }}
    {{- if not $v.server.disableTls }}
    - name: tls-server
      secret:
        secretName: {{ $v.server.tls.certSecretName }}
        defaultMode: 0440
        items:
          - key: tls.crt
            path: tls.crt
          - key: tls.key
            path: tls.key
    {{- if $v.server.tls.clientCaSecretName }}
    - name: tls-client-ca
      secret:
        secretName: {{ $v.server.tls.clientCaSecretName }}
        defaultMode: 0440
        items:
          - key: ca.crt
            path: ca.crt
    {{- end }}
    {{- end }}
    {{- if $v.server.auth.tokenSecretName }}
    - name: auth-token
      secret:
        secretName: {{ $v.server.auth.tokenSecretName }}
        defaultMode: 0440
        items:
          - key: {{ $v.server.auth.tokenSecretKey }}
            path: token
    {{- end }}
    {{- with $v.server.registryProbe.caBundle }}
    {{- if .secretName }}
    # the registry probe's CA bundle (registry_probe_ca_file)
    - name: registry-ca
      secret:
        secretName: {{ .secretName | quote }}
        defaultMode: 0440
        items:
          - key: {{ .key | quote }}
            path: ca.crt
    {{- else if .configMapName }}
    # the registry probe's CA bundle (registry_probe_ca_file)
    - name: registry-ca
      configMap:
        name: {{ .configMapName | quote }}
        defaultMode: 0444
        items:
          - key: {{ .key | quote }}
            path: ca.crt
    {{- end }}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* true when the data directory is a PersistentVolumeClaim (StatefulSet, SQLite, persistence on). */}}
{{- define "openshell.dataClaim" -}}
{{- if and (eq (include "openshell.workloadKind" .) "statefulset") (not (include "openshell.externalDb" .)) .Values.persistence.enabled }}true{{ end }}
{{- end }}
