import BackupCore
import BackupStorage
import Foundation

/// The steps of one running request, kept in the request itself (so the API and people see them as they
/// happen) and published as events. Writes go through the request's compare-and-swap and only while the
/// request is still running under this worker.
actor RollbackSteps {
    let board: RequestBoard
    let request: String
    let worker: String
    let events: RollbackEvents
    private(set) var steps: [StoreRequest.Step] = []

    init(board: RequestBoard, request: String, worker: String, events: RollbackEvents) {
        self.board = board
        self.request = request
        self.worker = worker
        self.events = events
    }

    /// Starts a step; returns its index for `end`.
    @discardableResult
    func begin(_ name: String, detail: String? = nil) async -> Int {
        steps.append(StoreRequest.Step(name: name, status: "running", started: Date(), detail: detail))
        await save()
        await events.publish(.step(request: request, name: name, status: "running", detail: detail))
        return steps.count - 1
    }

    /// Ends a running step; one already ended is left as it is.
    func end(_ index: Int, _ status: String, detail: String? = nil) async {
        guard steps.indices.contains(index), steps[index].status == "running" else { return }
        steps[index].status = status
        steps[index].ended = Date()
        if let detail { steps[index].detail = detail }
        await save()
        await events.publish(.step(request: request, name: steps[index].name, status: status, detail: detail))
    }

    /// A step that happened at once.
    func record(_ name: String, _ status: String, detail: String? = nil) async {
        let now = Date()
        steps.append(StoreRequest.Step(name: name, status: status, started: now, ended: now, detail: detail))
        await save()
        await events.publish(.step(request: request, name: name, status: status, detail: detail))
    }

    /// Runs `body` as the step `name`: succeeded when it returns, failed (with the error) when it throws.
    func run<T: Sendable>(_ name: String, detail: String? = nil, _ body: @Sendable () async throws -> T) async throws -> T {
        let index = await begin(name, detail: detail)
        do {
            let value = try await body()
            await end(index, "succeeded")
            return value
        } catch {
            await end(index, "failed", detail: "\(error)")
            throw error
        }
    }

    private func save() async {
        let (board, request, worker, steps) = (board, request, worker, steps)
        _ = try? await Blocking.run {
            try board.update(request) { stored in
                guard stored.status == .running, stored.worker == worker else { return false }
                stored.steps = steps
                return true
            }
        }
    }
}
