import BackupCore
import BackupInterop
import CoreMetrics
import Foundation
import Logging

/// A store in an S3-compatible bucket (`BACKUP_S3_URL=s3://bucket/prefix`).
///
/// How it keeps the `Storage` contract:
/// - atomic publish: small objects are one PUT; large ones a multipart upload that becomes visible only when
///   completed, and is aborted (no parts left billed) when the writer fails, is aborted or is dropped;
/// - transient faults: each operation sends its requests once and throws a `TransientStoreFault`, which the
///   `RetryingStorage` that `open` wraps it in retries by repeating the operation; only what cannot be repeated
///   whole (the writer's and the reader's requests, a listing's pages, and the few noted below) is retried by
///   the request (`S3Client.sendRetrying`);
/// - conditional create and compare-and-swap: `If-None-Match: *` and `If-Match: <etag>` on PUT and DELETE.
///   Servers that ignore them exist; `verifyConditionalWrites(through:)` detects one, and a store that
///   coordinates jobs calls it first (`open(…, coordinating: true)`), so that nothing relies on locks that do
///   not lock;
/// - listing: ListObjectsV2 with a delimiter, every page followed;
/// - versions are the server's ETags.
public struct S3Storage: Storage {
    let client: S3Client
    public var configuration: S3Configuration { client.configuration }
    /// Downloads are ranged GETs of this size: memory stays at one range, and a cut connection costs one range.
    static let readChunk = 8 << 20

    /// Keys per listing page (`max-keys`); nil leaves the server's own (1000 for S3). Set only by tests, to list
    /// in several pages without a thousand objects.
    let listPageSize: Int?

    init(client: S3Client, listPageSize: Int? = nil) {
        self.client = client
        self.listPageSize = listPageSize
    }

    /// Opens the store, wrapped in `RetryingStorage` (`S3_RETRIES`): the one way a bucket is opened (`Stores`, the
    /// tests), so that no caller meets a transient fault the store would have retried. With `coordinating`,
    /// first checks that the server honours conditional writes, and refuses (fails closed) when it does not:
    /// leases and unique requests would then silently not exclude.
    public static func open(
        _ configuration: S3Configuration, coordinating: Bool, logger: Logger? = nil
    ) throws -> any Storage {
        let bucket = S3Storage(client: try S3Client(configuration: configuration, logger: logger))
        let storage = RetryingStorage(bucket, retries: configuration.retries, logger: logger)
        if coordinating { try bucket.verifyConditionalWrites(through: storage) }
        return storage
    }

    public var description: String { configuration.url }
    public var kind: StoreKind { .bucket }
    public var localFolder: String? { nil }
    public var localStaging: LocalStaging? { nil }
    public func countRetries(in factory: any MetricsFactory) { client.countRetries(in: factory) }

    public func makeWriter(key: String) throws -> any ObjectWriter {
        S3ObjectWriter(client: client, key: client.objectKey(key))
    }

    public func openReader(key: String) throws -> (any ObjectReader)? {
        let objectKey = client.objectKey(key)
        let answer = try client.send("HEAD", key: objectKey)
        if answer.status == 404 { return nil }
        guard answer.status == 200, let length = answer.headers["content-length"].flatMap(Int64.init) else {
            throw client.failure(answer, "HEAD", objectKey)
        }
        return S3ObjectReader(client: client, key: objectKey, size: length, etag: answer.etag)
    }

    public func read(key: String) throws -> StoredObject? {
        let objectKey = client.objectKey(key)
        let answer = try client.send("GET", key: objectKey, bodyLimit: 64 << 20)
        if answer.status == 404 { return nil }
        guard answer.status == 200, let etag = answer.etag else { throw client.failure(answer, "GET", objectKey) }
        guard !answer.truncated else {
            throw ContingencyError.failed("\(client.describe(objectKey)) is larger than 64 MiB: not a small object", hint: "it was not written by Contingency")
        }
        // Last-Modified is the server's clock; an answer without one was at least written before its Date.
        let stamped = answer.headers["last-modified"] ?? answer.headers["date"]
        guard let modified = stamped.flatMap(Self.parseHTTPDate) else {
            throw ContingencyError.failed(
                "GET \(client.describe(objectKey)): the server's answer has no Last-Modified or Date",
                hint: "leases need the S3 server's time: use a server that sends them (every S3 implementation should)")
        }
        return StoredObject(
            data: answer.body, etag: etag, modified: modified, storeTime: answer.headers["date"].flatMap(Self.parseHTTPDate))
    }

    /// The `Date` of the server's answer to a HEAD (any status carries one): its clock, to the second.
    public func currentTime() throws -> Date {
        let objectKey = client.objectKey(".contingency/clock")
        let answer = try client.send("HEAD", key: objectKey)
        guard let date = answer.headers["date"].flatMap(Self.parseHTTPDate) else {
            throw ContingencyError.failed(
                "HEAD \(client.describe(objectKey)): the server's answer (HTTP \(answer.status)) has no Date header",
                hint: "leases need the S3 server's time: use a server that sends it (every S3 implementation should)")
        }
        return date
    }

    public func put(key: String, data: [UInt8]) throws {
        let objectKey = client.objectKey(key)
        let answer = try client.send("PUT", key: objectKey, headers: contentHeaders(key), body: data)
        guard answer.status == 200 else { throw client.failure(answer, "PUT", objectKey) }
    }

    public func create(key: String, data: [UInt8]) throws -> String? {
        let objectKey = client.objectKey(key)
        let answer = try client.send("PUT", key: objectKey, headers: contentHeaders(key) + [("If-None-Match", "*")], body: data)
        if answer.status == 412 { return nil }
        guard answer.status == 200, let etag = answer.etag else { throw client.failure(answer, "PUT", objectKey) }
        return etag
    }

    public func replace(key: String, data: [UInt8], ifMatch etag: String) throws -> String? {
        let objectKey = client.objectKey(key)
        let answer = try client.send("PUT", key: objectKey, headers: contentHeaders(key) + [("If-Match", etag)], body: data)
        if answer.status == 412 || answer.status == 404 { return nil }
        guard answer.status == 200, let etag = answer.etag else { throw client.failure(answer, "PUT", objectKey) }
        return etag
    }

    /// Without `ifMatch`, S3 answers a DELETE the same whether the object existed or not: a HEAD first tells,
    /// so the answer is exact unless another client deletes the object in between. That DELETE is retried by the
    /// request: repeated whole after its answer was lost, the operation would find nothing and say so. With
    /// `ifMatch`, a repeat after a lost answer is refused (the version is gone), as the request's own retry was.
    @discardableResult
    public func delete(key: String, ifMatch etag: String?) throws -> Bool {
        let objectKey = client.objectKey(key)
        let answer: S3Client.Answer
        if let etag {
            answer = try client.send("DELETE", key: objectKey, headers: [("If-Match", etag)])
        } else {
            let head = try client.send("HEAD", key: objectKey)
            if head.status == 404 { return false }
            answer = try client.sendRetrying("DELETE", key: objectKey)
        }
        if answer.status == 412 || answer.status == 404 { return false }
        guard answer.status == 204 || answer.status == 200 else { throw client.failure(answer, "DELETE", objectKey) }
        return true
    }

    /// Each page is requested with its own retries (`S3_RETRIES` per page, stopping once the task is cancelled):
    /// repeated whole, a listing would start again from its first page, and a fault on each of many pages would
    /// spend the one budget of the whole listing.
    public func list(folder: String) throws -> [ObjectInfo] {
        let base = client.objectKey(folder)
        let prefix = base.isEmpty ? "" : base + "/"
        var objects: [ObjectInfo] = []
        var token: String?
        var tokens: Set<String> = []
        repeat {
            var query = [("list-type", "2"), ("delimiter", "/"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            if let listPageSize { query.append(("max-keys", String(listPageSize))) }
            let answer = try client.sendRetrying(
                "GET", key: nil, query: query, bodyLimit: 16 << 20, shouldStop: RetryPolicy.whenTaskCancelled)
            guard answer.status == 200, let page = S3ListPage.parse(answer.body, prefix: prefix) else {
                throw client.failure(answer, "LIST", prefix)
            }
            for object in page.objects {
                objects.append(
                    ObjectInfo(
                        key: folder.isEmpty ? object.name : "\(folder)/\(object.name)", size: object.size,
                        modified: object.modified))
            }
            token = page.next
            // A server whose pages lead back to one already read would keep this loop going forever.
            if let token, !tokens.insert(token).inserted {
                throw Self.circularListing("LIST", client.describe(prefix))
            }
        } while token != nil
        return objects
    }

    private static func circularListing(_ method: String, _ target: String) -> ContingencyError {
        .failed(
            "\(method) \(target): the server's listing pages lead back to a page already read",
            hint: "the S3 server answers listings wrongly; check S3_ENDPOINT and the server")
    }

    public func availableBytes() throws -> Int64? { nil }

    /// Aborts multipart uploads under the store's prefix that were never completed, left by a run that was
    /// killed before it could abort them itself, among those whose object name `isOurs` (other installs may
    /// share the bucket). Call only while holding the store's lease (no other upload of ours is then in
    /// progress). Returns how many were aborted. Its requests are retried one by one: repeated whole after some
    /// aborts, the sweep would no longer count them.
    public func abortInterruptedUploads(named isOurs: (String) -> Bool) throws -> Int {
        let prefix = client.objectKey("")
        var aborted = 0
        var marker: (key: String, upload: String)?
        var markers: Set<[String]> = []
        repeat {
            var query = [("uploads", ""), ("prefix", prefix.isEmpty ? "" : prefix + "/")]
            if let marker { query += [("key-marker", marker.key), ("upload-id-marker", marker.upload)] }
            let answer = try client.sendRetrying("GET", key: nil, query: query, bodyLimit: 16 << 20)
            guard answer.status == 200, let page = S3UploadsPage.parse(answer.body) else {
                throw client.failure(answer, "LIST UPLOADS", prefix)
            }
            for (key, id) in page.uploads where isOurs(String(key.split(separator: "/").last ?? "")) {
                let abort = try client.sendRetrying("DELETE", key: key, query: [("uploadId", id)])
                if abort.status == 204 || abort.status == 200 || abort.status == 404 { aborted += 1 }
            }
            marker = page.next
            if let marker, !markers.insert([marker.key, marker.upload]).inserted {
                throw Self.circularListing("LIST UPLOADS", client.describe(prefix))
            }
        } while marker != nil
        return aborted
    }

    /// Checks that the server refuses a second `If-None-Match: *` create and a PUT with a stale `If-Match`, on
    /// a probe object it removes after, writing through `store` (this bucket with its retries). Throws, saying
    /// why the store cannot coordinate jobs, when it does not.
    func verifyConditionalWrites(through store: any Storage) throws {
        let probe = ".contingency/probe/\(UUID().uuidString.lowercased())"
        defer { _ = try? store.delete(key: probe, ifMatch: nil) }
        var ignored: String?
        do {
            // A lost answer to the first create makes its retry look refused: the probe is then ours all the same.
            _ = try store.create(key: probe, data: Array("probe".utf8))
            if try store.create(key: probe, data: Array("second".utf8)) != nil {
                ignored = "If-None-Match: * (a second conditional create of the same key succeeded)"
            } else if try store.replace(
                key: probe, data: Array("stale".utf8), ifMatch: "\"00000000000000000000000000000000\"") != nil
            {
                ignored = "If-Match (a write with a stale ETag succeeded)"
            }
        } catch let error as ContingencyError where error.message.contains("NotImplemented") || error.message.contains("InvalidArgument") {
            ignored = "it refuses them (\(error.message))"
        }
        if let ignored {
            throw ContingencyError.configuration(
                "the S3 server at \(configuration.endpoint) ignores conditional writes: \(ignored); refusing to coordinate jobs through \(configuration.url), where two of them could both believe they hold the store's lock",
                hint: "use a server that supports conditional writes (AWS S3, recent MinIO or Ceph RGW), or keep the store on a shared volume (BACKUP_DIR) with the bucket as its copy")
        }
    }

    private func contentHeaders(_ key: String) -> [(String, String)] {
        key.hasSuffix(".json") ? [("Content-Type", "application/json")] : [("Content-Type", "application/octet-stream")]
    }

    /// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's IMF-fixdate, which S3 sends), read by position
    /// with checked ranges rather than by a date formatter: the answer comes from the network, and ICU's
    /// formatters have trapped on hostile dates (see `S3XML`).
    static func parseHTTPDate(_ text: String) -> Date? {
        let bytes = Array(text.trimmingCharacters(in: .whitespaces).utf8)
        guard bytes.count == 29, bytes[3] == UInt8(ascii: ","), bytes[25...] == Array(" GMT".utf8)[...] else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            guard bytes[range].allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            return bytes[range].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let monthIndex = months.firstIndex(of: String(decoding: bytes[8..<11], as: UTF8.self)),
            let day = number(5..<7), let year = number(12..<16), let hour = number(17..<19), let minute = number(20..<22),
            let second = number(23..<25), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        // Days from 1970-01-01 to the civil date (H. Hinnant's days_from_civil), all in small integers.
        let month = monthIndex + 1
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3600 + minute * 60 + second))
    }
}

/// Streams an object into the bucket. Bytes collect into a part of `S3_PART_SIZE`; a full part is sent on a
/// background thread while the next one fills, so memory holds at most two parts, whatever the object's size.
/// An object smaller than a part is sent with one PUT at commit.
final class S3ObjectWriter: ObjectWriter, @unchecked Sendable {
    private let client: S3Client
    private let key: String
    private var buffer: [UInt8] = []
    private var written: Int64 = 0
    private var committed = false
    private var uploadID: String?
    private var partNumber = 0
    private var finished = false
    // Shared with the background sender; guarded by `lock`.
    private let lock = NSLock()
    private var parts: [(number: Int, etag: String)] = []
    private var failure: (any Error)?
    /// Set when the writer is aborted or its task cancelled: the part being sent stops at once.
    private var stopped = false
    private let sending = DispatchGroup()
    private let queue = DispatchQueue(label: "contingency.s3.upload")
    static let maximumParts = 10_000

    init(client: S3Client, key: String) {
        self.client = client
        self.key = key
        buffer.reserveCapacity(client.configuration.partSize)
    }

    deinit { abort() }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw ContingencyError.failed("\(client.describe(key)): write after the upload was committed or aborted") }
        // Filled to exactly one part, never past it: the buffer keeps the capacity it was given.
        var offset = 0
        while offset < bytes.count {
            let take = min(bytes.count - offset, client.configuration.partSize - buffer.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + take)]))
            offset += take
            written += Int64(take)
            if buffer.count == client.configuration.partSize { try sendPart() }
        }
    }

    /// Waits for the part being sent. If the calling task is cancelled meanwhile, that part is stopped and this
    /// throws at once rather than when a stalled request times out.
    private func waitForSender() throws {
        while sending.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
            if withUnsafeCurrentTask(body: { $0?.isCancelled ?? false }) { lock.withLock { stopped = true } }
        }
        if lock.withLock({ stopped }) { throw ContingencyError.cancelled("the upload of \(client.describe(key)) was stopped") }
        if let failure = lock.withLock({ failure }) { throw failure }
    }

    /// Hands the filled buffer to the background sender, after the previous part has gone.
    private func sendPart() throws {
        try waitForSender()
        if uploadID == nil { uploadID = try start() }
        partNumber += 1
        guard partNumber <= Self.maximumParts else {
            throw ContingencyError.failed(
                "\(client.describe(key)) would need more than \(Self.maximumParts) parts of \(ByteFormat.string(Int64(client.configuration.partSize)))",
                hint: "raise S3_PART_SIZE (an archive may have at most 10,000 parts)")
        }
        let part = buffer
        let number = partNumber
        let uploadID = uploadID!
        buffer = []
        buffer.reserveCapacity(client.configuration.partSize)
        sending.enter()
        queue.async { [self] in
            defer { sending.leave() }
            do {
                let answer = try client.sendRetrying(
                    "PUT", key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)], body: part,
                    shouldStop: { [weak self] in self.map { writer in writer.lock.withLock { writer.stopped } } ?? true })
                guard answer.status == 200, let etag = answer.etag else { throw client.failure(answer, "PUT part \(number) of", key) }
                lock.withLock { parts.append((number, etag)) }
            } catch {
                lock.withLock { failure = failure ?? error }
            }
        }
    }

    /// The size of the object under the key, or nil when there is none.
    private func objectSize() throws -> Int64? {
        let answer = try client.sendRetrying("HEAD", key: key)
        return answer.status == 200 ? answer.headers["content-length"].flatMap(Int64.init) : nil
    }

    /// The headers an archive is created with, in one PUT or a multipart upload: its type and storage class.
    private var archiveHeaders: [(String, String)] {
        [("Content-Type", "application/octet-stream")]
            + (client.configuration.storageClass.map { [("x-amz-storage-class", $0)] } ?? [])
    }

    private func start() throws -> String {
        let answer = try client.sendRetrying(
            "POST", key: key, query: [("uploads", "")], headers: archiveHeaders, body: [])
        guard answer.status == 200, let id = S3XMLElement.parse(answer.body)?.value("UploadId") else {
            throw client.failure(answer, "POST (start multipart upload)", key)
        }
        return id
    }

    func commit(beforePublishing check: () throws -> Void) throws {
        guard !finished else {
            if committed { return }
            throw ContingencyError.failed("\(client.describe(key)): commit after the upload was aborted")
        }
        do {
            if uploadID == nil {
                try check()
                let answer = try client.sendRetrying("PUT", key: key, headers: archiveHeaders, body: buffer)
                guard answer.status == 200 else { throw client.failure(answer, "PUT", key) }
            } else {
                if !buffer.isEmpty { try sendPart() }
                try waitForSender()
                try check()
                let list = lock.withLock { parts }.sorted { $0.number < $1.number }
                let body = "<CompleteMultipartUpload>"
                    + list.map { "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(S3XMLElement.escape($0.etag))</ETag></Part>" }
                    .joined() + "</CompleteMultipartUpload>"
                let answer = try client.sendRetrying(
                    "POST", key: key, query: [("uploadId", uploadID!)], body: Array(body.utf8))
                // A 200 can still carry an <Error> (S3 fails a completion after it started answering).
                let completed = answer.status == 200 && S3XMLElement.parse(answer.body).map { $0.name != "Error" } == true
                // NoSuchUpload after a retry: the first attempt completed it but its answer was lost. The object
                // is there, whole, if it has every byte written.
                guard completed || (answer.errorCode == "NoSuchUpload" && (try? objectSize()) == written) else {
                    throw client.failure(answer, "POST (complete multipart upload)", key)
                }
            }
            finished = true
            committed = true
            buffer = []
        } catch {
            abort()
            throw error
        }
    }

    /// Stops and discards the upload: the parts already sent are deleted with it (AbortMultipartUpload), so none
    /// stays billed. An abort that fails is retried by the next run (`abortInterruptedUploads`).
    func abort() {
        guard !finished else { return }
        finished = true
        lock.withLock { stopped = true }
        sending.wait()
        buffer = []
        guard let uploadID else { return }
        do {
            let answer = try client.sendRetrying("DELETE", key: key, query: [("uploadId", uploadID)])
            if ![200, 204, 404].contains(answer.status) {
                client.logger?.warning("Could not abort the upload of \(client.describe(key)): \(client.failure(answer, "DELETE", key)); the next backup aborts it")
            }
        } catch {
            client.logger?.warning("Could not abort the upload of \(client.describe(key)): \(error); the next backup aborts it")
        }
    }
}

/// Reads an object by ranged GETs, each conditional on the ETag seen when it was opened: an object replaced
/// while being read fails the read rather than mixing two versions.
final class S3ObjectReader: ObjectReader {
    private let client: S3Client
    private let key: String
    private let etag: String?
    let size: Int64
    private var offset: Int64 = 0
    private var chunk: [UInt8] = []
    private var position = 0

    init(client: S3Client, key: String, size: Int64, etag: String?) {
        self.client = client
        self.key = key
        self.size = size
        self.etag = etag
    }

    func read(into target: UnsafeMutableRawBufferPointer) throws -> Int {
        if position == chunk.count {
            guard offset < size else { return 0 }
            let last = min(size, offset + Int64(S3Storage.readChunk)) - 1
            var headers = [("Range", "bytes=\(offset)-\(last)")]
            if let etag { headers.append(("If-Match", etag)) }
            let answer = try client.sendRetrying(
                "GET", key: key, headers: headers, bodyLimit: S3Storage.readChunk, shouldStop: S3Client.whenTaskCancelled)
            if answer.status == 412 {
                throw ContingencyError.failed("\(client.describe(key)) changed while it was being read", hint: "run again")
            }
            let expected = Int(last - offset + 1)
            switch answer.status {
            case 206 where answer.body.count == expected: break
            case 200 where offset == 0 && Int64(answer.body.count) == size: break  // a server that ignores Range
            case 200, 206:
                throw ContingencyError.failed(
                    "\(client.describe(key)): \(answer.body.count) bytes came back for bytes \(offset)-\(last)",
                    hint: "the server cut the transfer short or ignores Range requests; run again")
            default: throw client.failure(answer, "GET", key)
            }
            chunk = answer.body
            position = 0
            offset += Int64(chunk.count)
        }
        let count = min(target.count, chunk.count - position)
        chunk.withUnsafeBytes { source in
            target.baseAddress!.copyMemory(from: source.baseAddress! + position, byteCount: count)
        }
        position += count
        return count
    }
}
