# placeholder
@0x93ea8f7921902037;
