//! The soak's requests: each scripts the mock's answer (a fault, or none) and
//! says what the client must see for it.

/// What a client must see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A healthy answer: 200, and the response completes.
    Completes,
    /// 200, and the response ends incomplete.
    Incomplete,
    /// The backend fails after the response began: it ends failed.
    FailsMidway,
    /// The backend fails before the response began: a 502, or (once the wait
    /// took a keepalive interval) a stream of one `error` event.
    FailsEarly,
    /// The backend refused for rate: a 429.
    RateLimited,
}

impl Expect {
    /// Whether an HTTP status other than 200 is this fault's answer.
    pub fn allows_status(self, status: u16) -> bool {
        match self {
            Expect::Completes | Expect::Incomplete => false,
            Expect::FailsMidway | Expect::FailsEarly => status == 502,
            Expect::RateLimited => status == 429,
        }
    }

    /// Whether a response ending with `status` is this fault's answer.
    pub fn allows_terminal(self, status: &str) -> bool {
        match self {
            Expect::Completes => status == "completed",
            Expect::Incomplete => status == "incomplete",
            Expect::FailsMidway => status == "failed",
            Expect::FailsEarly | Expect::RateLimited => false,
        }
    }
}

pub struct Scenario {
    pub name: &'static str,
    pub input: &'static str,
    pub stream: bool,
    pub store: bool,
    pub expect: Expect,
}

const fn scenario(
    name: &'static str,
    input: &'static str,
    stream: bool,
    store: bool,
    expect: Expect,
) -> Scenario {
    Scenario {
        name,
        input,
        stream,
        store,
        expect,
    }
}

pub const SCENARIOS: &[Scenario] = &[
    scenario(
        "clean, JSON, stored",
        "hello soak",
        false,
        true,
        Expect::Completes,
    ),
    scenario(
        "clean, stream, stored",
        "hello soak",
        true,
        true,
        Expect::Completes,
    ),
    scenario(
        "clean, stream, unstored",
        "hello soak",
        true,
        false,
        Expect::Completes,
    ),
    scenario(
        "long stream, stored",
        "[[tokens:60]] [[delay_ms:5]]",
        true,
        true,
        Expect::Completes,
    ),
    scenario(
        "reasoning, stream, stored",
        "[[reasoning:think first]] then answer",
        true,
        true,
        Expect::Completes,
    ),
    scenario(
        "stream cut short, stored",
        "[[cut:3]] a b c d e",
        true,
        true,
        Expect::FailsMidway,
    ),
    scenario(
        "500, JSON, stored",
        "[[error:500]]",
        false,
        true,
        Expect::FailsEarly,
    ),
    scenario(
        "500, stream, stored",
        "[[error:500]]",
        true,
        true,
        Expect::FailsEarly,
    ),
    scenario(
        "429, stream",
        "[[error:429]] [[retry_after:1]]",
        true,
        false,
        Expect::RateLimited,
    ),
    scenario(
        "503 then a stalled body, stream, stored",
        "[[stall_error:503]]",
        true,
        true,
        Expect::FailsEarly,
    ),
    scenario(
        "finish chunk then a held connection, stream, stored",
        "[[hold_after_finish]]",
        true,
        true,
        Expect::Completes,
    ),
    scenario(
        "slow status line, stream, stored",
        "[[status_ms:1500]]",
        true,
        true,
        Expect::Completes,
    ),
    scenario(
        "slow status line, JSON, stored",
        "[[status_ms:1500]]",
        false,
        true,
        Expect::Completes,
    ),
    scenario(
        "length limit, stream, stored",
        "[[finish:length]]",
        true,
        true,
        Expect::Incomplete,
    ),
    scenario(
        "one 1 MB chunk, stream",
        "[[huge_chunk:1000000]]",
        true,
        false,
        Expect::Completes,
    ),
];
