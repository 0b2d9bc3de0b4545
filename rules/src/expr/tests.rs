// expr tests placeholder
