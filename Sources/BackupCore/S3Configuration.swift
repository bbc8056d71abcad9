import Foundation

/// Where and how to reach an S3-compatible bucket (`BACKUP_S3_URL=s3://bucket/prefix`).
public struct S3Configuration: Sendable, Equatable {
    public var bucket: String
    /// Key prefix inside the bucket, without leading or trailing slash ("" for the bucket's top).
    public var prefix: String
    /// `https://s3.<region>.amazonaws.com` unless `S3_ENDPOINT` names another server (MinIO, Ceph, R2, GCS).
    public var endpoint: String
    public var region: String
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// `https://endpoint/bucket/key` (path style) rather than `https://bucket.endpoint/key` (virtual-hosted).
    public var pathStyle: Bool
    public var caBundle: String?
    public var storageClass: String?
    /// Bytes per multipart part: the upload's memory is one part (plus the one being sent).
    public var partSize: Int
    /// A request moving no byte for this long is abandoned (and retried).
    public var stallTimeoutSeconds: Int
    /// How many times a transient fault is retried before the operation fails.
    public var retries: Int

    public init(
        bucket: String, prefix: String, endpoint: String, region: String = "us-east-1", accessKeyID: String,
        secretAccessKey: String, sessionToken: String? = nil, pathStyle: Bool = true, caBundle: String? = nil,
        storageClass: String? = nil, partSize: Int = defaultPartSize, stallTimeoutSeconds: Int = 60, retries: Int = 5
    ) {
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.pathStyle = pathStyle
        self.caBundle = caBundle
        self.storageClass = storageClass
        self.partSize = partSize
        self.stallTimeoutSeconds = stallTimeoutSeconds
        self.retries = retries
    }

    public static let minimumPartSize = 5 << 20
    public static let defaultPartSize = 16 << 20

    public static let settings: [Setting] = [
        Settings.s3URL, Settings.s3Endpoint, Settings.awsRegion, Settings.awsAccessKeyID, Settings.awsSecretAccessKey,
        Settings.awsSessionToken, Settings.s3PathStyle, Settings.s3CABundle, Settings.s3StorageClass, Settings.s3PartSize,
        Settings.s3Timeout, Settings.s3Retries,
    ]

    /// `s3://bucket/some/prefix/` → ("bucket", "some/prefix"); nil when it is not such a URL.
    public static func parseURL(_ url: String) -> (bucket: String, prefix: String)? {
        guard url.hasPrefix("s3://") else { return nil }
        let rest = url.dropFirst(5)
        let bucket = rest.prefix { $0 != "/" }
        let prefix = rest.dropFirst(bucket.count).split(separator: "/").joined(separator: "/")
        // Bucket names: 3-63 of lowercase letters, digits, '.', '-' (dots allowed for old buckets).
        let valid = (3...63).contains(bucket.count)
            && bucket.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-" }
        // "." and ".." would be resolved away by the HTTP client after signing: the signature would not match.
        guard valid, !prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else { return nil }
        return (String(bucket), prefix)
    }

    /// Reads the bucket's settings, or nil when BACKUP_S3_URL is not set.
    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> S3Configuration? {
        guard let url = try values.nonEmpty(Settings.s3URL) else { return nil }
        guard let (bucket, prefix) = parseURL(url) else {
            throw .configuration(
                "BACKUP_S3_URL=\(url) is not an s3://bucket/prefix URL",
                hint: "write it like s3://my-backups/app1 (the bucket name in lowercase, 3 to 63 characters)")
        }
        guard let accessKeyID = try values.nonEmpty(Settings.awsAccessKeyID),
            let secret = try values.nonEmpty(Settings.awsSecretAccessKey)
        else {
            throw .configuration(
                "BACKUP_S3_URL is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not",
                hint: "set both (or their _FILE variants) to the bucket's access key")
        }
        let region = try values.nonEmpty(Settings.awsRegion) ?? values.environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let endpoint = try values.nonEmpty(Settings.s3Endpoint)
        if let endpoint, URLComponents(string: endpoint)?.host == nil || !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            throw .configuration("S3_ENDPOINT=\(endpoint) is not an http:// or https:// URL", hint: "write it like https://minio.internal:9000")
        }
        let pathStyle: Bool
        switch try values.nonEmpty(Settings.s3PathStyle)?.lowercased() ?? "auto" {
        case "auto": pathStyle = endpoint != nil || bucket.contains(".")
        case "true", "1", "yes", "on": pathStyle = true
        case "false", "0", "no", "off": pathStyle = false
        case let other: throw .configuration("S3_FORCE_PATH_STYLE=\(other) is not one of: auto, true, false")
        }
        let partSize = try values.byteSize(Settings.s3PartSize) ?? Int64(defaultPartSize)
        guard partSize >= Int64(minimumPartSize), partSize <= 1 << 30 else {
            throw .configuration("S3_PART_SIZE=\(ByteFormat.string(partSize)) is outside 5 MiB to 1 GiB", hint: "S3 needs parts of at least 5 MiB")
        }
        let timeout = try values.duration(Settings.s3Timeout)
        guard timeout >= 1 else { throw .configuration("S3_TIMEOUT must be at least 1s") }
        return S3Configuration(
            bucket: bucket, prefix: prefix,
            endpoint: (endpoint ?? "https://s3.\(region).amazonaws.com").trimmingCharacters(in: CharacterSet(charactersIn: "/")),
            region: region, accessKeyID: accessKeyID, secretAccessKey: secret,
            sessionToken: try values.nonEmpty(Settings.awsSessionToken), pathStyle: pathStyle,
            caBundle: try values.nonEmpty(Settings.s3CABundle), storageClass: try values.nonEmpty(Settings.s3StorageClass),
            partSize: Int(partSize), stallTimeoutSeconds: timeout,
            retries: try values.integer(Settings.s3Retries, in: 0...20) ?? 5)
    }

    /// `s3://bucket/prefix`, for messages.
    public var url: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }
}

extension S3Configuration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Never shows the secret key or the session token.
    public var description: String { "\(url) at \(endpoint) (region \(region), key \(accessKeyID))" }
    public var debugDescription: String { description }
    /// `dump` and test failure output go through the mirror: it carries no secret either.
    public var customMirror: Mirror {
        Mirror(self, children: ["url": url, "endpoint": endpoint, "region": region, "accessKeyID": accessKeyID, "pathStyle": pathStyle])
    }
}
