//! LSTM, GRU and RNN.
use super::{check, OneOp};
use expect_test::expect;

#[test]
fn bidirectional_lstm_is_nn_lstm_with_reordered_gates() {
    check(
        OneOp::new("LSTM")
            .input("x", &[2, 5, 3])
            .int("hidden_size", 4)
            .str("direction", "bidirectional")
            .weight("W", &[2, 16, 3])
            .weight("R", &[2, 16, 4])
            .weight("B", &[2, 32])
            .outputs(3),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)

            def forward(self, x):
                lstm, (lstm_h_raw, lstm_c_raw) = self.lstm(x)
                lstm_h = lstm_h_raw.transpose(0, 1).flatten(1)
                lstm_c = lstm_c_raw.transpose(0, 1).flatten(1)
                return lstm, lstm_h, lstm_c
            # state: lstm.weight_ih_l0 [16, 3]
            # state: lstm.weight_hh_l0 [16, 4]
            # state: lstm.bias_ih_l0 [16]
            # state: lstm.bias_hh_l0 [16]
            # state: lstm.weight_ih_l0_reverse [16, 3]
            # state: lstm.weight_hh_l0_reverse [16, 4]
            # state: lstm.bias_ih_l0_reverse [16]
            # state: lstm.bias_hh_l0_reverse [16]
        "#]],
    );
}

#[test]
fn reverse_lstm_without_bias_flips_time_returning_only_y() {
    check(
        OneOp::new("LSTM")
            .input("x", &[2, 5, 3])
            .int("hidden_size", 4)
            .str("direction", "reverse")
            .weight("W", &[1, 16, 3])
            .weight("R", &[1, 16, 4]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 4, batch_first=True, bias=False)

            def forward(self, x):
                lstm_y_raw, (_, _) = self.lstm(x.flip(1))
                lstm = lstm_y_raw.flip(1)
                return lstm
            # state: lstm.weight_ih_l0 [16, 3]
            # state: lstm.weight_hh_l0 [16, 4]
        "#]],
    );
}

#[test]
fn lstm_with_peepholes_uses_the_recurrent_helper() {
    check(
        OneOp::new("LSTM")
            .input("x", &[2, 5, 3])
            .int("hidden_size", 4)
            .weight("W", &[1, 16, 3])
            .weight("R", &[1, 16, 4])
            .weight("P", &[1, 12])
            .outputs(2),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.lstm = Recurrent("LSTM", 3, 4, ["forward"], "tanh", "sigmoid", False)

            def forward(self, x):
                lstm, lstm_h, _ = self.lstm(x)
                return lstm, lstm_h
            # state: lstm.W [1, 16, 3]
            # state: lstm.R [1, 16, 4]
            # state: lstm.B [1, 32]
            # state: lstm.P [1, 12]
        "#]],
    );
}

#[test]
fn gru_with_reset_before_the_matmul_uses_the_recurrent_helper() {
    check(
        OneOp::new("GRU")
            .input("x", &[2, 5, 3])
            .int("hidden_size", 4)
            .weight("W", &[1, 12, 3])
            .weight("R", &[1, 12, 4])
            .weight("B", &[1, 24])
            .outputs(2),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.gru = Recurrent("GRU", 3, 4, ["forward"], "tanh", "sigmoid", False)

            def forward(self, x):
                gru, gru_h, _ = self.gru(x)
                return gru, gru_h
            # state: gru.W [1, 12, 3]
            # state: gru.R [1, 12, 4]
            # state: gru.B [1, 24]
            # state: gru.P [1, 12]
        "#]],
    );
}

#[test]
fn gru_with_linear_before_reset_is_nn_gru() {
    check(
        OneOp::new("GRU")
            .input("x", &[2, 5, 3])
            .int("hidden_size", 4)
            .bool("linear_before_reset", true)
            .weight("W", &[1, 12, 3])
            .weight("R", &[1, 12, 4])
            .weight("B", &[1, 24])
            .outputs(2),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(3, 4, batch_first=True)

            def forward(self, x):
                gru, gru_h_raw = self.gru(x)
                gru_h = gru_h_raw.transpose(0, 1).flatten(1)
                return gru, gru_h
            # state: gru.weight_ih_l0 [12, 3]
            # state: gru.weight_hh_l0 [12, 4]
            # state: gru.bias_ih_l0 [12]
            # state: gru.bias_hh_l0 [12]
        "#]],
    );
}

#[test]
fn relu_rnn() {
    check(
        OneOp::new("RNN")
            .input("x", &[2, 5, 3])
            .int("hidden_size", 4)
            .str("activation", "relu")
            .weight("W", &[1, 4, 3])
            .weight("R", &[1, 4, 4])
            .weight("B", &[1, 8])
            .outputs(2),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.rnn = nn.RNN(3, 4, batch_first=True, nonlinearity="relu")

            def forward(self, x):
                rnn, rnn_h_raw = self.rnn(x)
                rnn_h = rnn_h_raw.transpose(0, 1).flatten(1)
                return rnn, rnn_h
            # state: rnn.weight_ih_l0 [4, 3]
            # state: rnn.weight_hh_l0 [4, 4]
            # state: rnn.bias_ih_l0 [4]
            # state: rnn.bias_hh_l0 [4]
        "#]],
    );
}

#[test]
fn lstm_initial_states_become_torch_direction_first_states() {
    check(
        OneOp::new("LSTM")
            .input("x", &[2, 5, 3])
            .input("h0", &[2, 8])
            .input("c0", &[2, 8])
            .int("hidden_size", 4)
            .str("direction", "bidirectional")
            .weight("W", &[2, 16, 3])
            .weight("R", &[2, 16, 4])
            .weight("B", &[2, 32])
            .outputs(3),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)

            def forward(self, x, h0, c0):
                lstm_h0 = h0.unflatten(1, (2, 4)).transpose(0, 1).contiguous()
                lstm_c0 = c0.unflatten(1, (2, 4)).transpose(0, 1).contiguous()
                lstm, (lstm_h_raw, lstm_c_raw) = self.lstm(x, (lstm_h0, lstm_c0))
                lstm_h = lstm_h_raw.transpose(0, 1).flatten(1)
                lstm_c = lstm_c_raw.transpose(0, 1).flatten(1)
                return lstm, lstm_h, lstm_c
            # state: lstm.weight_ih_l0 [16, 3]
            # state: lstm.weight_hh_l0 [16, 4]
            # state: lstm.bias_ih_l0 [16]
            # state: lstm.bias_hh_l0 [16]
            # state: lstm.weight_ih_l0_reverse [16, 3]
            # state: lstm.weight_hh_l0_reverse [16, 4]
            # state: lstm.bias_ih_l0_reverse [16]
            # state: lstm.bias_hh_l0_reverse [16]
        "#]],
    );
}

#[test]
fn lstm_with_only_h0_passes_a_zero_cell_state() {
    check(
        OneOp::new("LSTM")
            .input("x", &[2, 5, 3])
            .input("h0", &[2, 4])
            .int("hidden_size", 4)
            .weight("W", &[1, 16, 3])
            .weight("R", &[1, 16, 4])
            .outputs(2),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(3, 4, batch_first=True, bias=False)

            def forward(self, x, h0):
                lstm_h0 = h0.unflatten(1, (1, 4)).transpose(0, 1).contiguous()
                lstm, (lstm_h_raw, _) = self.lstm(x, (lstm_h0, torch.zeros_like(lstm_h0)))
                lstm_h = lstm_h_raw.transpose(0, 1).flatten(1)
                return lstm, lstm_h
            # state: lstm.weight_ih_l0 [16, 3]
            # state: lstm.weight_hh_l0 [16, 4]
        "#]],
    );
}

#[test]
fn reverse_gru_with_initial_state() {
    check(
        OneOp::new("GRU")
            .input("x", &[2, 5, 3])
            .input("h0", &[2, 4])
            .int("hidden_size", 4)
            .str("direction", "reverse")
            .bool("linear_before_reset", true)
            .weight("W", &[1, 12, 3])
            .weight("R", &[1, 12, 4])
            .outputs(2),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(3, 4, batch_first=True, bias=False)

            def forward(self, x, h0):
                gru_h0 = h0.unflatten(1, (1, 4)).transpose(0, 1).contiguous()
                gru_y_raw, gru_h_raw = self.gru(x.flip(1), gru_h0)
                gru = gru_y_raw.flip(1)
                gru_h = gru_h_raw.transpose(0, 1).flatten(1)
                return gru, gru_h
            # state: gru.weight_ih_l0 [12, 3]
            # state: gru.weight_hh_l0 [12, 4]
        "#]],
    );
}

#[test]
fn the_recurrent_helper_takes_the_initial_states_as_arguments() {
    check(
        OneOp::new("GRU")
            .input("x", &[2, 5, 3])
            .input("h0", &[2, 4])
            .int("hidden_size", 4)
            .weight("W", &[1, 12, 3])
            .weight("R", &[1, 12, 4])
            .outputs(2),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.gru = Recurrent("GRU", 3, 4, ["forward"], "tanh", "sigmoid", False)

            def forward(self, x, h0):
                gru, gru_h, _ = self.gru(x, h0)
                return gru, gru_h
            # state: gru.W [1, 12, 3]
            # state: gru.R [1, 12, 4]
            # state: gru.B [1, 24]
            # state: gru.P [1, 12]
        "#]],
    );
}
