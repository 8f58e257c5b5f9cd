// Which state may follow which. Pure tables, shared by every store so SQLite and
// PostgreSQL refuse the same moves. Staying in the same state is allowed (a roll-forward
// may record "starting" again with a new handle) and is not a transition.

extension InstanceState {
    public var isTerminal: Bool { self == .terminated }

    public func canMove(to next: InstanceState) -> Bool {
        if next == self { return true }
        switch (self, next) {
        case (.recorded, .starting), (.starting, .started), (.started, .configuring),
             (.configuring, .configured):
            return true
        // A re-run of the configuration (a late fact changed a parameter).
        case (.configured, .configuring):
            return true
        case (.terminated, _):
            return false
        case (_, .failed), (_, .terminated):
            return true
        default:
            return false
        }
    }
}

extension JobState {
    public var isFinal: Bool { self == .succeeded || self == .failed }

    public func canMove(to next: JobState) -> Bool {
        switch (self, next) {
        case (.recorded, .sent), (.recorded, .failed), (.sent, .sent), (.sent, .succeeded), (.sent, .failed):
            return true
        default:
            return next == self && !isFinal
        }
    }
}

extension DeploymentStatus {
    public func canMove(to next: DeploymentStatus) -> Bool {
        if next == self { return true }
        switch (self, next) {
        case (.recorded, .launching), (.launching, .configured):
            return true
        case (.configured, .launching), (.failed, .launching), (.terminated, .launching):
            return true
        case (.terminating, .terminated):
            return true
        case (.terminated, _):
            return false
        case (_, .failed), (_, .terminating):
            return true
        default:
            return false
        }
    }
}
