import BackupCore
import Foundation
import Testing

@Suite("S3 settings")
struct S3ConfigurationTests {
    private func values(_ environment: [String: String], files: [String: String] = [:]) -> ConfigurationValues {
        ConfigurationValues(environment: environment) { path in
            guard let text = files[path] else { throw CocoaError(.fileNoSuchFile) }
            return text
        }
    }

    private let keys = ["AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-value-123"]

    @Test("s3:// URLs", arguments: [
        ("s3://my-backups", "my-backups", ""), ("s3://my-backups/", "my-backups", ""),
        ("s3://my-backups/app1", "my-backups", "app1"), ("s3://my-backups//a/b/", "my-backups", "a/b"),
        ("s3://old.dotted.bucket/x", "old.dotted.bucket", "x"),
    ])
    func parsesURLs(_ row: (String, String, String)) {
        let parsed = S3Configuration.parseURL(row.0)
        #expect(parsed?.bucket == row.1 && parsed?.prefix == row.2)
    }

    @Test("refused URLs", arguments: [
        "https://bucket/x", "s3://", "s3://UPPER/x", "s3://ab", "bucket/prefix", "s3://bad_name", "s3://bucket/a/../b", "s3://bucket/./x",
    ])
    func refusesURLs(_ url: String) {
        #expect(S3Configuration.parseURL(url) == nil)
        #expect(throws: ContingencyError.self) { try S3Configuration.load(values(["BACKUP_S3_URL": url].merging(keys) { $1 })) }
    }

    @Test("defaults: AWS endpoint of the region, virtual-hosted, 16 MiB parts, 60 s stall, 5 retries")
    func defaults() throws {
        let s3 = try #require(try S3Configuration.load(values(["BACKUP_S3_URL": "s3://b-1/p", "AWS_REGION": "eu-west-3"].merging(keys) { $1 })))
        #expect(s3.endpoint == "https://s3.eu-west-3.amazonaws.com")
        #expect(!s3.pathStyle)
        #expect(s3.partSize == 16 << 20 && s3.stallTimeoutSeconds == 60 && s3.retries == 5)
        #expect(s3.sessionToken == nil && s3.caBundle == nil && s3.storageClass == nil)
        let fallback = try #require(try S3Configuration.load(values(["BACKUP_S3_URL": "s3://b-1", "AWS_DEFAULT_REGION": "ap-south-1"].merging(keys) { $1 })))
        #expect(fallback.region == "ap-south-1")
    }

    @Test("a custom endpoint means path style unless told otherwise; every setting is read")
    func customEndpoint() throws {
        let environment = [
            "BACKUP_S3_URL": "s3://minio-bucket/app", "S3_ENDPOINT": "http://minio.internal:9000/", "S3_PART_SIZE": "64MiB",
            "S3_TIMEOUT": "2m", "S3_RETRIES": "7", "S3_CA_BUNDLE": "/etc/ca.pem", "S3_STORAGE_CLASS": "STANDARD_IA",
            "AWS_SESSION_TOKEN_FILE": "/run/secrets/token", "AWS_SECRET_ACCESS_KEY": "", "AWS_SECRET_ACCESS_KEY_FILE": "/run/secrets/key",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        ]
        let s3 = try #require(try S3Configuration.load(values(environment, files: ["/run/secrets/token": "tok\n", "/run/secrets/key": "from-file\n"])))
        #expect(s3.endpoint == "http://minio.internal:9000" && s3.pathStyle)
        #expect(s3.partSize == 64 << 20 && s3.stallTimeoutSeconds == 120 && s3.retries == 7)
        #expect(s3.caBundle == "/etc/ca.pem" && s3.storageClass == "STANDARD_IA")
        #expect(s3.sessionToken == "tok" && s3.secretAccessKey == "from-file")
        let virtual = try #require(try S3Configuration.load(values(environment.merging(["S3_FORCE_PATH_STYLE": "false"]) { $1 }, files: ["/run/secrets/token": "t", "/run/secrets/key": "k"])))
        #expect(!virtual.pathStyle)
    }

    @Test("refused settings name the variable", arguments: [
        (["S3_PART_SIZE": "1MiB"], "S3_PART_SIZE"), (["S3_PART_SIZE": "lots"], "S3_PART_SIZE"),
        (["S3_ENDPOINT": "minio:9000"], "S3_ENDPOINT"), (["S3_FORCE_PATH_STYLE": "maybe"], "S3_FORCE_PATH_STYLE"),
        (["S3_RETRIES": "99"], "S3_RETRIES"), (["AWS_SECRET_ACCESS_KEY": ""], "AWS_SECRET_ACCESS_KEY"),
    ])
    func refusesSettings(_ row: ([String: String], String)) {
        var environment = keys.merging(["BACKUP_S3_URL": "s3://b-1/p"]) { $1 }
        environment.merge(row.0) { $1 }
        do {
            _ = try S3Configuration.load(values(environment))
            Issue.record("accepted \(row.0)")
        } catch {
            #expect(error.message.contains(row.1), "\(error)")
        }
    }

    @Test("the description never shows the secret or the token")
    func description() throws {
        let s3 = try #require(try S3Configuration.load(values(["BACKUP_S3_URL": "s3://b-1/p", "AWS_SESSION_TOKEN": "token-xyz"].merging(keys) { $1 })))
        var dumped = ""
        dump(s3, to: &dumped)
        var store = ""
        dump(try StoreConfiguration.load(values(["BACKUP_S3_URL": "s3://b-1/p", "AWS_SESSION_TOKEN": "token-xyz"].merging(keys) { $1 })), to: &store)
        for text in [s3.description, "\(s3)", String(reflecting: s3), dumped, store] {
            #expect(!text.contains("secret-value-123") && !text.contains("token-xyz") && text.contains("s3://b-1/p"))
        }
    }

    @Test("with a bucket, BACKUP_DIR counts only when set; without one, it is the store")
    func volumeOnlyWhenSet() throws {
        let bucketOnly = try StoreConfiguration.load(values(["BACKUP_S3_URL": "s3://b-1/p"].merging(keys) { $1 }))
        #expect(bucketOnly.backupDirectory == nil && bucketOnly.s3?.bucket == "b-1")
        #expect(bucketOnly.stagingDirectory == "/tmp/contingency")
        let both = try StoreConfiguration.load(values(["BACKUP_S3_URL": "s3://b-1/p", "BACKUP_DIR": "/backups"].merging(keys) { $1 }))
        #expect(both.backupDirectory == "/backups" && both.s3 != nil)
        #expect(both.description == "/backups and s3://b-1/p")
        let emptyDir = try StoreConfiguration.load(values(["BACKUP_S3_URL": "s3://b-1/p", "BACKUP_DIR": ""].merging(keys) { $1 }))
        #expect(emptyDir.backupDirectory == nil)
        let volume = try StoreConfiguration.load(values([:]))
        #expect(volume.backupDirectory == "/backups" && volume.s3 == nil)
    }

    @Test("sizes", arguments: [
        ("16777216", Int64(16 << 20)), ("16MiB", 16 << 20), ("16M", 16 << 20), ("16 MB", 16 << 20), ("512k", 512 << 10),
        ("1G", 1 << 30), ("0", 0),
    ])
    func sizes(_ row: (String, Int64)) {
        #expect(ByteFormat.parse(row.0) == row.1)
    }

    @Test("not sizes", arguments: ["", "MiB", "-5M", "5 TB", "1.5G", "99999999999999999999"])
    func notSizes(_ text: String) {
        #expect(ByteFormat.parse(text) == nil)
    }
}
